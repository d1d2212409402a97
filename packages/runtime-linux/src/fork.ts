import { rmSync } from "node:fs";
import { join } from "node:path";
import { InvalidRequestError, type KeyedLock, type Logger } from "@berth/core";
import { DISK_STATE, type DiskStore, mountPoints, run } from "@berth/linux-host";
import { setFrozen } from "./freezer.js";
import { isFrozen } from "./host.js";
import type { OciCli } from "./oci-cli.js";
import type { SandboxRecords } from "./records.js";

/** What copying a sandbox's disk needs of the driver. */
export interface ForkDeps {
  records: SandboxRecords;
  oci: OciCli;
  lock: KeyedLock;
  disks: () => DiskStore;
  log: Logger;
}

/**
 * Copies sandbox `sourceId`'s disk image to `dest` as it is at one moment: a running sandbox is
 * frozen (cgroup freezer) and its disk flushed (`sync -f`: the image file then holds every
 * write), the image is copied (a reflink where the disk store can: milliseconds, whatever the
 * sandbox changed), and it is thawed. A paused sandbox stays frozen; a hibernated one's disk is
 * not mounted and already whole. The copy must be of the same template and disk size.
 */
export function copySandboxDisk(
  d: ForkDeps,
  sourceId: string,
  dest: string,
  expect: { template: string; diskMiB: number },
): Promise<void> {
  return d.lock.run(sourceId, async () => {
    const p = d.records.existing(sourceId);
    const info = d.records.info(sourceId);
    if (d.records.template(sourceId) !== expect.template)
      throw new InvalidRequestError(`a fork has its source's template, '${d.records.template(sourceId)}'`, {
        field: "template",
      });
    if (info && info.diskMiB !== expect.diskMiB)
      throw new InvalidRequestError(`a fork has its source's disk size, ${info.diskMiB} MiB`, {
        field: "resources.diskMiB",
      });
    const paths = info?.cgroupPaths ?? {};
    const freeze = d.oci.has(sourceId) && !isFrozen(paths);
    if (freeze) await setFrozen(paths, true);
    try {
      if ((await mountPoints()).has(p.disk))
        await run("sync", ["-f", p.disk], { log: d.log, timeoutMs: 60_000 });
      const t0 = performance.now();
      const how = await d.disks().copy(p.image, dest);
      d.log.debug(
        { sourceId, how, ms: Math.round((performance.now() - t0) * 10) / 10 },
        "sandbox disk copied",
      );
    } finally {
      if (freeze) await setFrozen(paths, false);
    }
  });
}

/**
 * Forgets, on a fork's freshly mounted disk, the source's process records (berth-init's state):
 * a fork starts with the files, not the processes.
 */
export function forgetSourceProcesses(disk: string): void {
  rmSync(join(disk, DISK_STATE, "procs"), { recursive: true, force: true });
}
