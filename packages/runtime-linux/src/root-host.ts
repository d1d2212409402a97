import { join } from "node:path";
import type { Logger } from "@berth/core";
import { idmapBinaryPath } from "@berth/supervisor";
import { IdmappedViews } from "./idmapped-views.js";
import type { RuntimeLayout } from "./paths.js";
import { ROOT_ID_COUNT, type RootIds, rootUnavailableError, rootUnavailableReason } from "./root-sandbox.js";

/** The default first host id of root sandboxes: far above the ids hosts give people and subuid ranges. */
export const DEFAULT_ROOT_ID_BASE = 2_000_000_000;

/**
 * What the local driver keeps for root sandboxes: their host id range, the idmap helper, the
 * idmapped views they share, the data dir's dirs runc must pass through, and whether this host
 * can make them at all (probed once, at the first ask).
 */
export class RootSandboxes {
  readonly ids: RootIds;
  readonly idmapBinary: string;
  readonly views: IdmappedViews;
  readonly ancestors: string[];
  private probe: Promise<string | null> | null = null;
  private readonly probeDir: string;
  private readonly dataDir: string;

  constructor(o: {
    dataDir: string;
    layout: RuntimeLayout;
    hostBase?: number;
    idmapBinary?: string;
    log: Logger;
  }) {
    this.ids = { hostBase: o.hostBase ?? DEFAULT_ROOT_ID_BASE, count: ROOT_ID_COUNT };
    this.idmapBinary = o.idmapBinary ?? idmapBinaryPath();
    this.views = new IdmappedViews(join(o.layout.root, "idmapped"), this.ids, this.idmapBinary, o.log);
    this.dataDir = o.dataDir;
    this.ancestors = [o.dataDir, o.layout.root, o.layout.sandboxes];
    this.probeDir = join(o.layout.root, "idmap-probe");
  }

  /** Why this host cannot make root sandboxes, or null (user namespaces and idmapped mounts work). */
  unavailable(): Promise<string | null> {
    this.probe ??= rootUnavailableReason(this.idmapBinary, this.probeDir, this.ids, this.dataDir);
    return this.probe;
  }

  /** Rejects with `root_unavailable` (501) when the host cannot. */
  async check(): Promise<void> {
    const reason = await this.unavailable();
    if (reason) throw rootUnavailableError(reason);
  }
}
