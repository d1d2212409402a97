import {
  chownSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  rmSync,
  statfsSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Logger } from "@berth/core";
import { run, tryRun } from "./command.js";
import { SANDBOX_GID, SANDBOX_UID } from "./rootfs.js";

/** Dirs at the root of every sandbox disk: the overlay's upper and work dirs and berth-init's state. */
export const DISK_UPPER = "upper";
export const DISK_WORK = "work";
export const DISK_STATE = "state";

/**
 * The skeleton copied into every new disk by `mkfs.ext4 -d`, so a fresh disk needs no mount to
 * be prepared (state is owned by the sandbox user; upper/work by root, as overlayfs wants).
 */
export function ensureDiskSkeleton(dir: string): void {
  if (existsSync(join(dir, DISK_STATE))) return;
  for (const d of [DISK_UPPER, DISK_WORK, DISK_STATE])
    mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  chownSync(join(dir, DISK_STATE), SANDBOX_UID, SANDBOX_GID);
}

/**
 * Makes a sparse ext4 image of `sizeMiB` at `image` (which must not exist); the one place
 * sandbox disks and volumes are formatted. The size is the limit, enforced by the kernel (writes
 * past it fail with ENOSPC). No journal: a sandbox's writable layer is thrown away with it, and a
 * volume is unmounted cleanly; crash consistency buys nothing worth a journal's writes. Lazy
 * inode-table init keeps mkfs at a few ms whatever the size. `skeleton` is copied in
 * (`mkfs -d`); `rootOwner` owns the root dir. A failed mkfs leaves no image.
 */
export async function makeExt4Image(
  image: string,
  sizeMiB: number,
  fill: { skeleton?: string; rootOwner?: { uid: number; gid: number } },
  o: { log?: Logger; signal?: AbortSignal } = {},
): Promise<void> {
  const fd = openSync(image, "wx", 0o600);
  try {
    ftruncateSync(fd, sizeMiB * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
  const owner = fill.rootOwner ? `,root_owner=${fill.rootOwner.uid}:${fill.rootOwner.gid}` : "";
  try {
    await run(
      "mkfs.ext4",
      [
        "-q",
        "-F",
        "-m",
        "0",
        "-O",
        "^has_journal",
        "-E",
        `lazy_itable_init=1,nodiscard${owner}`,
        ...(fill.skeleton ? ["-d", fill.skeleton] : []),
        image,
      ],
      { ...o, timeoutMs: 60_000 },
    );
  } catch (err) {
    rmSync(image, { force: true });
    throw err;
  }
}

/** Makes a sandbox disk: a sparse ext4 image of `sizeMiB` holding the skeleton (see makeExt4Image). */
export function makeDiskImage(
  image: string,
  sizeMiB: number,
  skeleton: string,
  o: { log?: Logger; signal?: AbortSignal } = {},
): Promise<void> {
  return makeExt4Image(image, sizeMiB, { skeleton }, o);
}

/** Loop-mounts a disk image (mount allocates the loop device and frees it again on umount). */
export async function mountDisk(image: string, at: string, o: { log?: Logger; signal?: AbortSignal } = {}) {
  mkdirSync(at, { recursive: true, mode: 0o700 });
  await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev,noatime", image, at], {
    ...o,
    timeoutMs: 30_000,
  });
}

/**
 * Mounts the sandbox's root: the template read-only below, the disk's upper dir above. The
 * paths are given relative to the slot dir (mount runs there) because overlayfs shows its options
 * verbatim in /proc/self/mountinfo, which the sandbox can read: relative paths keep the server's
 * data dir out of it.
 */
export async function mountOverlay(
  lower: string,
  disk: string,
  at: string,
  o: { log?: Logger; signal?: AbortSignal } = {},
): Promise<void> {
  mkdirSync(at, { recursive: true, mode: 0o755 });
  const cwd = dirname(at);
  const rel = (p: string) => relative(cwd, p);
  const opts = `lowerdir=${rel(lower)},upperdir=${rel(join(disk, DISK_UPPER))},workdir=${rel(join(disk, DISK_WORK))},nosuid,nodev`;
  await run("mount", ["-t", "overlay", "overlay", "-o", opts, rel(at)], { ...o, cwd, timeoutMs: 30_000 });
}

/**
 * Unmounts `at` if something is mounted there. A busy mount is detached lazily so destroy never
 * hangs on it; a loop device set up by mount(8) is freed when its last mount goes.
 */
export async function unmount(at: string, mounted: Set<string>, log?: Logger): Promise<void> {
  if (!mounted.has(at)) return;
  if (!(await tryRun("umount", [at], { log, timeoutMs: 30_000 })))
    await tryRun("umount", ["-l", at], { log, timeoutMs: 30_000 });
}

/** Mount points currently in this mount namespace (from /proc/self/mountinfo), unescaped. */
export async function mountPoints(): Promise<Set<string>> {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field)
      out.add(field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

/** Bytes in use on a mounted disk. */
export function diskUsedBytes(at: string): number {
  try {
    const s = statfsSync(at);
    return (s.blocks - s.bfree) * s.bsize;
  } catch {
    return 0;
  }
}
