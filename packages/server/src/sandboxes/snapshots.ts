import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  NotFoundError,
  newId,
  nextSandboxState,
  type Runtime,
  type SnapshotRecord,
  type Store,
} from "@berth/core";
import type { EventHub } from "../events/event-log.js";
import type { SandboxService } from "./service.js";

/** Snapshots: a sandbox's writable layer in `<dataDir>/snapshots/<id>.tar.zst`, metadata in the store. */
export class SnapshotService {
  private readonly dir: string;

  constructor(
    private readonly d: {
      dataDir: string;
      store: Store;
      runtime: Runtime;
      sandboxes: SandboxService;
      events: EventHub;
    },
  ) {
    this.dir = join(d.dataDir, "snapshots");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Removes what a server stopped mid-capture left: temp files, and archives with no record. */
  async sweep(): Promise<void> {
    for (const name of readdirSync(this.dir)) {
      const id = name.replace(/\.tar\.zst(\.tmp)?$/, "");
      if (name.endsWith(".tmp") || !(await this.d.store.getSnapshot(id)))
        rmSync(join(this.dir, name), { force: true });
    }
  }

  /** The archive of a snapshot. */
  path(id: string): string {
    return join(this.dir, `${id}.tar.zst`);
  }

  /** Captures a sandbox (running: frozen while copied, then thawed; paused or hibernated as is). */
  async create(tenantId: string, sandboxId: string, name: string | null): Promise<SnapshotRecord> {
    const s = await this.d.sandboxes.get(tenantId, sandboxId);
    nextSandboxState(sandboxId, s.state, "snapshot");
    const id = newId("sn");
    try {
      const sizeBytes = await this.d.runtime.snapshot(sandboxId, this.path(id));
      const record: SnapshotRecord = {
        id,
        tenantId,
        sandboxId,
        name,
        template: s.template,
        resources: s.resources,
        env: s.env,
        sizeBytes,
        createdAt: new Date().toISOString(),
      };
      await this.d.store.transaction(async (tx) => {
        await tx.insertSnapshot(record);
        // Its archive is in this server's data dir: requests for it are served here.
        await tx.setReplicaOf("snapshots", record.id, this.d.sandboxes.replica);
      });
      void this.d.events.append(sandboxId, "snapshot", { snapshotId: id, sizeBytes }).catch(() => {});
      return record;
    } catch (err) {
      // A half-written archive or an archive without a row is never left behind.
      rmSync(this.path(id), { force: true });
      rmSync(`${this.path(id)}.tmp`, { force: true });
      throw err;
    }
  }

  /** The tenant's snapshot (another tenant's is 404). */
  async get(tenantId: string, id: string): Promise<SnapshotRecord> {
    const s = await this.d.store.getSnapshot(id);
    if (!s || s.tenantId !== tenantId) throw new NotFoundError("snapshot", id);
    return s;
  }

  list(tenantId: string): Promise<SnapshotRecord[]> {
    return this.d.store.listSnapshots(tenantId);
  }

  async remove(tenantId: string, id: string): Promise<void> {
    await this.get(tenantId, id);
    await this.d.store.deleteSnapshot(id);
    rmSync(this.path(id), { force: true });
  }
}
