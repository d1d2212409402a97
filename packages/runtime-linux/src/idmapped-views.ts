import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@berth/core";
import { mountPoints, run, unmount } from "@berth/linux-host";

/**
 * Read-only idmapped views of host dirs (a template's root filesystem, the host's /usr), made
 * once and shared by every root sandbox: all of them map ids to the same host range, so one
 * view serves all, and a create costs no helper process. A view is named by its source's device
 * and inode, so a template deleted and imported again under its name gets a view of its own.
 * Views stay mounted across server restarts (sandboxes keep using them) until `removeAll`.
 */
export class IdmappedViews {
  private readonly making = new Map<string, Promise<string>>();

  constructor(
    /** Where the views are mounted (host-only; runc passes through it, see grantTraversal). */
    readonly dir: string,
    /** The root sandboxes' id range (see RootIds). */
    private readonly ids: { hostBase: number; count: number },
    private readonly idmapBinary: string,
    private readonly log: Logger,
  ) {}

  /** The shared view of `source`, mounted now if it is not yet. */
  view(source: string): Promise<string> {
    const st = statSync(source);
    const at = join(this.dir, `${st.dev}-${st.ino}`);
    let made = this.making.get(at);
    if (!made) {
      made = this.mount(source, at);
      this.making.set(at, made);
      made.catch(() => this.making.delete(at));
    }
    return made;
  }

  private async mount(source: string, at: string): Promise<string> {
    if ((await mountPoints()).has(at)) return at;
    mkdirSync(at, { recursive: true, mode: 0o700 });
    const { hostBase, count } = this.ids;
    await run(this.idmapBinary, [String(hostBase), String(count), source, at, "ro"], {
      log: this.log,
      timeoutMs: 30_000,
    });
    return at;
  }

  /** Unmounts every view (when no sandbox is left: tests, uninstall). */
  async removeAll(): Promise<void> {
    const mounted = await mountPoints();
    for (const at of mounted) if (at.startsWith(`${this.dir}/`)) await unmount(at, mounted, this.log);
    this.making.clear();
  }
}
