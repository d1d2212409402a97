import { join } from "node:path";

/** Where the driver keeps everything, under `<dataDir>/runtime/` (all 0700, host-only). */
export class RuntimeLayout {
  readonly root: string;
  constructor(dataDir: string) {
    this.root = join(dataDir, "runtime");
  }
  /** The OCI runtime's `--root`: its state survives server restarts. */
  get runcRoot(): string {
    return join(this.root, "runc");
  }
  get templates(): string {
    return join(this.root, "templates");
  }
  /** The read-only lower layer of every sandbox made from `name`. */
  templateRootfs(name: string): string {
    return join(this.templates, name, "rootfs");
  }
  /**
   * The pool of ready disks: inside the sandboxes' dir, because a slot is taken by renaming it
   * there, and that dir may be a filesystem of its own (see DiskStore).
   */
  get pool(): string {
    return join(this.sandboxes, ".pool");
  }
  /** Where the pool was before disks could be on a filesystem of their own (emptied at start). */
  get legacyPool(): string {
    return join(this.root, "disks", "pool");
  }
  /** The btrfs image the sandboxes' dir is mounted from when the data dir cannot reflink. */
  get diskStoreImage(): string {
    return join(this.root, "disks", "sandboxes.btrfs");
  }
  /** What `mkfs.ext4 -d` copies into each new disk. */
  get diskSkeleton(): string {
    return join(this.root, "disks", "skeleton");
  }
  get sandboxes(): string {
    return join(this.root, "sandboxes");
  }
  /** One sandbox's bundle dir (config.json, rootfs/, disk/, the supervisor socket). */
  sandbox(id: string): SandboxPaths {
    const dir = join(this.sandboxes, id);
    return {
      dir,
      config: join(dir, "config.json"),
      rootfs: join(dir, "rootfs"),
      image: join(dir, "disk.img"),
      disk: join(dir, "disk"),
      socket: join(dir, "sock"),
      net: join(dir, "net.json"),
      pidFile: join(dir, "init.pid"),
      output: join(dir, "runc.out"),
      info: join(dir, "info.json"),
      bootId: join(dir, "disk", "boot_id"),
    };
  }
}

/** The files of one sandbox on the host. */
export interface SandboxPaths {
  dir: string;
  config: string;
  rootfs: string;
  image: string;
  disk: string;
  socket: string;
  /** The sandbox's network (`SandboxNet`), when it has one. */
  net: string;
  pidFile: string;
  output: string;
  info: string;
  /**
   * The sandbox's boot id, new at each start (bound over /proc/sys/kernel/random/boot_id). On
   * the sandbox's own disk, outside what the sandbox sees, so mountinfo shows `/boot_id`, not a
   * host path, and it goes with the disk.
   */
  bootId: string;
}
