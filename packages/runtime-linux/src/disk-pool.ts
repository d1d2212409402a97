import { randomBytes } from "node:crypto";
import { readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@berth/core";
import { makeDiskImage } from "./disk.js";

/**
 * Formatted sandbox disks of the default size kept ready (as unmounted image files, so they
 * survive restarts for free), refilled one at a time in the background, so `create` takes one
 * with a rename instead of waiting for mkfs.
 */
export class DiskPool {
  private ready: string[] = [];
  private filling: Promise<void> | null = null;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly dir: string,
    readonly sizeMiB: number,
    private readonly target: number,
    private readonly skeleton: string,
    private readonly log?: Logger,
  ) {}

  /** Adopts images left by an earlier run (of the right size) and starts filling. */
  start(): void {
    const suffix = `-${this.sizeMiB}m.img`;
    for (const name of readdirSync(this.dir)) {
      if (name.endsWith(suffix) && this.ready.length < this.target) this.ready.push(join(this.dir, name));
      else rmSync(join(this.dir, name), { force: true }); // half-made or of an old size
    }
    this.refill();
  }

  /** Moves a ready image to `dest`; false when the pool is empty (the caller makes one). */
  take(dest: string): boolean {
    const image = this.ready.shift();
    this.refill();
    if (!image) return false;
    renameSync(image, dest);
    return true;
  }

  /** How many images are ready now. */
  get size(): number {
    return this.ready.length;
  }

  /** Resolves when the pool is full (or closed); for tests and benchmarks. */
  async whenFull(): Promise<void> {
    while (this.filling) await this.filling;
  }

  /** Stops refilling; ready images stay on disk for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await this.filling?.catch(() => {});
  }

  private refill(): void {
    if (this.filling || this.closed || this.ready.length >= this.target) return;
    this.filling = (async () => {
      while (!this.closed && this.ready.length < this.target) {
        const name = `${randomBytes(8).toString("hex")}-${this.sizeMiB}m.img`;
        // Made under a temporary name: a crash mid-mkfs never leaves an image that looks ready.
        const tmp = join(this.dir, `${name}.tmp`);
        try {
          await makeDiskImage(tmp, this.sizeMiB, this.skeleton, { log: this.log, signal: this.abort.signal });
          renameSync(tmp, join(this.dir, name));
          this.ready.push(join(this.dir, name));
        } catch (err) {
          rmSync(tmp, { force: true });
          if (!this.closed) this.log?.warn({ err: String(err) }, "disk pool: could not make a disk");
          return;
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }
}
