import { constants, existsSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "@berth/core";
import { run, tryRun } from "./command.js";
import { mountPoints, unmount } from "./disk.js";

/**
 * How sandbox disk images are copied (a fork): `reflink` where the sandboxes' directory shares
 * blocks between files (btrfs, xfs: instant, copy-on-write), `copy` (a sparse full copy) where
 * it cannot.
 */
export type DiskCopyMode = "reflink" | "copy";

/**
 * Where sandbox disk images live: a directory (`dir`, the driver's sandboxes and its pool of
 * ready disks; dot-names in it are not sandboxes) on a filesystem that can share blocks between
 * files, so a sandbox's disk is copied in milliseconds whatever it holds. When the data dir's
 * own filesystem can (btrfs, xfs) nothing is added. When it cannot (ext4), `dir` is mounted from a sparse btrfs image beside it
 * (`image`, the size of the data dir's filesystem but taking only what is used; holes are given
 * back on delete): btrfs rather than xfs because its mkfs writes ~5 MB against xfs's 64 MB log,
 * and it is already needed for the Docker driver's tests. Each data dir has its own image, so
 * several servers on one host do not meet. A `dir` that already holds sandboxes from before
 * stays as it is (copies are then full copies) until they are gone.
 */
export class DiskStore {
  private modeNow: DiskCopyMode = "copy";
  private mountedHere = false;

  constructor(
    private readonly o: {
      dir: string;
      image: string;
      /** false: never make or mount the image (BERTH_DISK_COPY_ON_WRITE=false). */
      enabled: boolean;
      /** Clears what the plain `dir` holds besides sandboxes (a pool of disks) before it is mounted over. */
      beforeMount: () => Promise<void>;
      log: Logger;
    },
  ) {}

  /** How disks are copied (known after `start`). */
  get mode(): DiskCopyMode {
    return this.modeNow;
  }

  /** Mounts the image over `dir` when it is needed (making it the first time); idempotent. */
  async start(): Promise<void> {
    const { dir, image, log } = this.o;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if ((await mountPoints()).has(dir)) {
      this.mountedHere = true;
      this.modeNow = "reflink";
      return;
    }
    if (await canReflink(dir)) {
      this.modeNow = "reflink";
      return;
    }
    if (!this.o.enabled) {
      log.info(
        { dir },
        "disk store: copy-on-write is off (BERTH_DISK_COPY_ON_WRITE); forks copy disks in full",
      );
      return;
    }
    if (readdirSync(dir).some((name) => !name.startsWith("."))) {
      log.warn(
        { dir },
        "disk store: sandboxes made before copy-on-write disks are here; forks copy disks in full until they are gone",
      );
      return;
    }
    const made = !existsSync(image);
    try {
      await this.o.beforeMount();
      if (made) await makeStoreImage(image, log);
      await run("mount", ["-t", "btrfs", "-o", "loop,discard=async,noatime,nosuid,nodev", image, dir], {
        log,
        timeoutMs: 60_000,
      });
    } catch (err) {
      if (made) rmSync(image, { force: true });
      log.warn(
        { err: String(err) },
        "disk store: could not mount a btrfs image for disks; forks copy disks in full",
      );
      return;
    }
    this.mountedHere = true;
    // Disk images are rewritten in place: no copy-on-write of their blocks beyond a fork's sharing.
    await tryRun("chattr", ["+C", dir], { log, timeoutMs: 10_000 });
    await directIo(image, log);
    this.modeNow = "reflink";
    log.info({ dir, image }, "disk store: sandbox disks on a btrfs image (copy-on-write forks)");
  }

  /** Unmounts the image (its files stay for the next start); call when no sandbox is left. */
  async close(): Promise<void> {
    if (!this.mountedHere) return;
    await unmount(this.o.dir, await mountPoints(), this.o.log);
    this.mountedHere = false;
  }

  /** Unmounts and deletes the image (uninstall, tests); every sandbox must be gone. */
  async purge(): Promise<void> {
    await this.close();
    if (!(await mountPoints()).has(this.o.dir)) rmSync(this.o.image, { force: true });
  }

  /**
   * Copies a disk image to `dest` (which must not exist): a reflink when the store can, else
   * a sparse full copy (said in the log, with how long it took). A failed copy leaves no `dest`.
   */
  async copy(src: string, dest: string): Promise<DiskCopyMode> {
    try {
      await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
      return "reflink";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw err;
      rmSync(dest, { force: true });
    }
    const t0 = performance.now();
    try {
      await run("cp", ["--sparse=always", "--no-preserve=all", src, dest], {
        log: this.o.log,
        timeoutMs: 30 * 60_000,
      });
    } catch (err) {
      rmSync(dest, { force: true });
      throw err;
    }
    this.o.log.info(
      { src, ms: Math.round(performance.now() - t0) },
      "disk store: no reflink here; the disk was copied in full",
    );
    return "copy";
  }
}

/** Whether files in `dir` can share blocks (FICLONE). */
async function canReflink(dir: string): Promise<boolean> {
  const a = join(dir, ".reflink-probe");
  const b = `${a}-copy`;
  try {
    writeFileSync(a, "x");
    await copyFile(a, b, constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  }
}

/** A sparse btrfs image as large as the filesystem it is on (it takes only what is written). */
async function makeStoreImage(image: string, log: Logger): Promise<void> {
  const s = statfsSync(dirname(image));
  const bytes = Math.max(1 << 30, Math.floor((s.blocks * s.bsize) / (1 << 30)) * (1 << 30));
  writeFileSync(image, "", { mode: 0o600, flag: "wx" });
  await run("truncate", ["-s", String(bytes), image], { log, timeoutMs: 10_000 });
  // One copy of metadata: a second on the same file guards against nothing.
  await run("mkfs.btrfs", ["-q", "-f", "-m", "single", "-d", "single", "-L", "berth-disks", image], {
    log,
    timeoutMs: 60_000,
  });
}

/**
 * Turns on direct I/O for the image's loop device, so disk writes are not cached twice (once
 * for the sandbox's disk file, once for this image); best effort, a kernel may refuse it.
 */
async function directIo(image: string, log: Logger): Promise<void> {
  const found = await run("losetup", ["-j", image], { log, timeoutMs: 10_000 }).catch(() => null);
  const dev = /^(\/dev\/loop\d+):/m.exec(found?.stdout ?? "")?.[1];
  if (dev) await tryRun("losetup", ["--direct-io=on", dev], { log, timeoutMs: 10_000 });
}
