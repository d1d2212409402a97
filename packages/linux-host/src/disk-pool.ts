import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@berth/core";

/** How long after a create the pool holds off refilling, so bursts of creates run at full speed. */
const QUIET_MS = 150;

import { makeDiskImage, mountDisk, mountOverlay, mountPoints, unmount } from "./disk.js";

/** The parts of a root filesystem slot: a disk image, its mount, and the overlay root over it. */
export function slotPaths(dir: string): { image: string; disk: string; rootfs: string } {
  return { image: join(dir, "disk.img"), disk: join(dir, "disk"), rootfs: join(dir, "rootfs") };
}

/**
 * Builds a slot in `dir`: formats the disk (unless the image is there), loop-mounts it and
 * mounts the overlay root (template below, the disk's upper dir above).
 */
export async function prepareSlot(
  dir: string,
  sizeMiB: number,
  skeleton: string,
  template: string,
  o: { log?: Logger; signal?: AbortSignal } = {},
): Promise<void> {
  const s = slotPaths(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(s.image)) await makeDiskImage(s.image, sizeMiB, skeleton, o);
  await mountDisk(s.image, s.disk, o);
  await mountOverlay(template, s.disk, s.rootfs, o);
}

/** Unmounts a slot's overlay and disk (whichever are mounted); the image file stays. */
export async function releaseSlot(dir: string, log?: Logger): Promise<void> {
  const s = slotPaths(dir);
  for (const at of [s.rootfs, s.disk]) await unmount(at, await mountPoints(), log);
}

/**
 * Root filesystems of the default template and disk size kept ready: formatted, loop-mounted,
 * with the overlay mounted. `take` hands one over by renaming its directory (the mounts move
 * with it), so create waits for neither mkfs nor mount. Refilled one at a time in the
 * background. On close the mounts go but the images stay, so a restart reuses them cheaply.
 */
export class RootfsPool {
  private ready: string[] = [];
  /** Formatted images from an earlier run, waiting to be mounted. */
  private adopted: string[] = [];
  private filling: Promise<void> | null = null;
  private closed = false;
  private readonly abort = new AbortController();
  /** Refilling waits until this time (ms) while slots remain: a create happened just now. */
  private quietAfter = 0;

  constructor(
    private readonly dir: string,
    readonly sizeMiB: number,
    private readonly target: number,
    private readonly skeleton: string,
    private readonly template: string,
    private readonly log?: Logger,
  ) {}

  /** Adopts slots left by an earlier run (unmounting any a crash left mounted) and starts filling. */
  async start(): Promise<void> {
    const suffix = `-${this.sizeMiB}m`;
    for (const name of readdirSync(this.dir)) {
      const dir = join(this.dir, name);
      await releaseSlot(dir, this.log);
      if (name.endsWith(suffix) && this.adopted.length < this.target && existsSync(slotPaths(dir).image))
        this.adopted.push(dir);
      else rmSync(dir, { recursive: true, force: true }); // half-made, surplus, or of an old size
    }
    this.refill();
  }

  /**
   * Moves a ready slot to `dest` (which must not exist); false when none is ready. Does not
   * refill: spawning mkfs costs milliseconds on the caller's path, so the caller calls `refill()`
   * once its own latency-critical work is done.
   */
  take(dest: string): boolean {
    const slot = this.ready.shift();
    if (!slot) return false;
    renameSync(slot, dest);
    this.quietAfter = Date.now() + QUIET_MS;
    return true;
  }

  /** Resolves when the pool is full (or closed); for tests and benchmarks. */
  async whenFull(): Promise<void> {
    // A refill may be due but not begun (callers schedule it after their own work): begin it.
    this.refill();
    while (this.filling) await this.filling;
  }

  /** Stops refilling and unmounts the ready slots (their images stay for the next start). */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await this.filling?.catch(() => {});
    for (const dir of this.ready.splice(0)) await releaseSlot(dir, this.log);
  }

  /** Starts making slots in the background until the pool is full (no-op if already at it). */
  refill(): void {
    if (this.filling || this.closed || this.ready.length >= this.target) return;
    this.filling = (async () => {
      while (!this.closed && this.ready.length < this.target) {
        // During a burst of creates, refilling (mkfs, mount: tens of ms of CPU) would slow each
        // create down; it waits for a quiet moment while ready slots remain.
        while (!this.closed && this.ready.length > 0 && Date.now() < this.quietAfter)
          await new Promise((r) => setTimeout(r, this.quietAfter - Date.now()));
        if (this.closed) break;
        const dir =
          this.adopted.shift() ?? join(this.dir, `${randomBytes(8).toString("hex")}-${this.sizeMiB}m`);
        try {
          await prepareSlot(dir, this.sizeMiB, this.skeleton, this.template, {
            log: this.log,
            signal: this.abort.signal,
          });
          if (this.closed) await releaseSlot(dir, this.log);
          else this.ready.push(dir);
        } catch (err) {
          await releaseSlot(dir, this.log);
          rmSync(dir, { recursive: true, force: true });
          if (!this.closed) this.log?.warn({ err: String(err) }, "rootfs pool: could not prepare a slot");
          return;
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }
}
