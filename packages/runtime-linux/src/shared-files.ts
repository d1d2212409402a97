import { chmodSync, copyFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@berth/core";
import { mountPoints, run, tryRun } from "@berth/linux-host";

/**
 * The host files every sandbox binds read-only (berth-init, resolv.conf), kept on a small tmpfs
 * of this server. A bind mount shows its source's path within its filesystem in the sandbox's
 * /proc/self/mountinfo: from here that is `/init`, where a file on the host's disk would show
 * the install path or the data dir. Files are replaced by rename, so running sandboxes keep the
 * copy they started with.
 */
export class SharedFiles {
  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {}

  /** Mounts the tmpfs unless it is there (it outlives a server restart, like the sandboxes). */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    if ((await mountPoints()).has(this.dir)) return;
    await run("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0755,nosuid,nodev", "tmpfs", this.dir], {
      log: this.log,
      timeoutMs: 10_000,
    });
  }

  /** Puts a copy of host file `source` (or `content`) here as `name`; returns its host path. */
  put(name: string, from: { source: string } | { content: string }, mode = 0o644): string {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    if ("source" in from) copyFileSync(from.source, tmp);
    else writeFileSync(tmp, from.content);
    chmodSync(tmp, mode);
    renameSync(tmp, path);
    return path;
  }

  /** Unmounts the tmpfs (no sandbox uses it any more: uninstall, tests). */
  async remove(): Promise<void> {
    if ((await mountPoints()).has(this.dir)) await tryRun("umount", ["-l", this.dir], { log: this.log });
  }
}
