import { readFileSync } from "node:fs";
import type { KeyedLock, Logger, RuntimeInfo, SandboxSuspension } from "@berth/core";
import { prepareSlot, releaseSlot } from "@berth/linux-host";
import { removeCgroups } from "./cgroups.js";
import { killLeftovers, setFrozen, withStillDisk } from "./freezer.js";
import type { OciCli } from "./oci-cli.js";
import type { RuntimeLayout } from "./paths.js";
import type { SandboxInfo, SandboxRecords } from "./records.js";
import { captureLayer } from "./snapshot.js";

/** What suspending and waking sandboxes needs of the driver. */
export interface SuspensionDeps {
  layout: RuntimeLayout;
  records: SandboxRecords;
  oci: OciCli;
  lock: KeyedLock;
  /** Disk size of a sandbox whose record does not say. */
  defaultDiskMiB: number;
  /** The lower layer of a template. */
  templateRootfs: (name: string) => string;
  /** Starts a sandbox's kept bundle again under its cgroups path. */
  launch: (
    id: string,
    diskMiB: number,
    cgroupsPath: string,
    template: string,
    root: boolean,
  ) => Promise<SandboxInfo>;
  /** Mounts a root sandbox's root filesystem again over its kept disk (idmapped template and /usr). */
  remountRoot: (id: string, template: string) => Promise<void>;
  log: Logger;
}

/**
 * The local driver's suspension: pause and resume through the cgroup freezer, hibernate (stop,
 * keep the disk and bundle) and wake, and snapshots of the writable layer.
 */
export class LinuxSuspension implements SandboxSuspension {
  constructor(private readonly d: SuspensionDeps) {}

  /** Freezes every process of the sandbox (cgroup freezer): memory stays, CPU drops to zero. */
  pause(id: string): Promise<void> {
    return this.d.lock.run(id, async () => {
      this.d.records.existing(id);
      await setFrozen(this.d.records.info(id)?.cgroupPaths ?? {}, true);
    });
  }

  /** Thaws a paused sandbox. */
  resume(id: string): Promise<void> {
    return this.d.lock.run(id, async () => {
      this.d.records.existing(id);
      await setFrozen(this.d.records.info(id)?.cgroupPaths ?? {}, false);
    });
  }

  /**
   * Ends every process and frees the sandbox's memory, cgroups and loop device; its disk image,
   * bundle and network (address, rules) stay, so `wake` brings it back with the same files.
   */
  hibernate(id: string): Promise<void> {
    return this.d.lock.run(id, async () => {
      this.d.records.existing(id);
      const paths = this.d.records.info(id)?.cgroupPaths ?? {};
      await this.d.oci.killAndDelete(id);
      await killLeftovers(paths, this.d.log);
      removeCgroups(paths, this.d.log);
      await releaseSlot(this.d.layout.sandbox(id).dir, this.d.log);
    });
  }

  /** Starts a hibernated sandbox again from its kept disk and bundle. */
  wake(id: string): Promise<RuntimeInfo> {
    return this.d.lock.run(id, async () => {
      const p = this.d.records.existing(id);
      const config = JSON.parse(readFileSync(p.config, "utf8")) as { linux: { cgroupsPath: string } };
      const diskMiB = this.d.records.info(id)?.diskMiB ?? this.d.defaultDiskMiB;
      const template = this.d.records.template(id);
      const root = this.d.records.info(id)?.root === true;
      await prepareSlot(p.dir, diskMiB, this.d.layout.diskSkeleton, this.d.templateRootfs(template), {
        log: this.d.log,
      });
      try {
        if (root) await this.d.remountRoot(id, template);
        return await this.d.launch(id, diskMiB, config.linux.cgroupsPath, template, root);
      } catch (err) {
        await releaseSlot(p.dir, this.d.log);
        throw err;
      }
    });
  }

  /**
   * Captures the sandbox's writable layer into `dest` (a zstd tar). A running sandbox is frozen
   * while it is copied, so the snapshot is consistent; a hibernated one has its disk mounted
   * for the copy. Resolves with the archive's size.
   */
  snapshot(id: string, dest: string): Promise<number> {
    return this.d.lock.run(id, () =>
      this.stillDisk(id, (disk) => captureLayer(disk, dest, { log: this.d.log })),
    );
  }

  /** Runs `read` on the sandbox's disk while nothing writes to it (see withStillDisk); call under the lock. */
  stillDisk<T>(id: string, read: (disk: string) => Promise<T>): Promise<T> {
    const p = this.d.records.existing(id);
    return withStillDisk(
      { image: p.image, mountPoint: p.disk },
      {
        cgroupPaths: this.d.records.info(id)?.cgroupPaths ?? {},
        running: this.d.oci.has(id),
        log: this.d.log,
      },
      () => read(p.disk),
    );
  }
}
