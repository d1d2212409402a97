import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { ConflictError, InvalidRequestError, type Logger } from "@berth/core";
import { makeExt4Image, mountDisk, mountPoints, unmount } from "./disk.js";
import { SANDBOX_GID, SANDBOX_UID } from "./rootfs.js";

const ID = /^vo[a-z0-9]{16}$/;
/**
 * Named persistent directories: each an ext4 image of its own size (the kernel enforces it),
 * loop-mounted once on the host under `<root>/mnt/<id>` for its whole life and bind-mounted into
 * every sandbox that uses it (one mount, so several sandboxes share it safely). Survives sandbox
 * deletion and server restarts.
 */
export class Volumes {
  constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {
    mkdirSync(join(root, "mnt"), { recursive: true, mode: 0o700 });
  }

  image(id: string): string {
    return join(this.root, `${id}.img`);
  }

  /** Host path a sandbox's bind mount comes from. */
  mountPoint(id: string): string {
    return join(this.root, "mnt", id);
  }

  /** Mounts every volume that is not mounted (after a reboot or a crash). */
  async start(): Promise<void> {
    const mounted = await mountPoints();
    for (const name of readdirSync(this.root)) {
      const id = name.replace(/\.img$/, "");
      if (name.endsWith(".img") && ID.test(id) && !mounted.has(this.mountPoint(id)))
        await mountDisk(this.image(id), this.mountPoint(id), { log: this.log });
    }
  }

  async create(id: string, sizeMiB: number): Promise<void> {
    if (!ID.test(id)) throw new InvalidRequestError("invalid volume id");
    const image = this.image(id);
    if (existsSync(image)) throw new ConflictError(`volume '${id}' already exists`);
    // makeExt4Image leaves nothing when it fails (and never touches an image it did not make).
    await makeExt4Image(
      image,
      sizeMiB,
      { rootOwner: { uid: SANDBOX_UID, gid: SANDBOX_GID } },
      { log: this.log },
    );
    try {
      await mountDisk(image, this.mountPoint(id), { log: this.log });
    } catch (err) {
      await this.remove(id);
      throw err;
    }
  }

  /** Bytes in use on the volume. */
  usedBytes(id: string): number {
    try {
      const s = statfsSync(this.mountPoint(id));
      return (s.blocks - s.bfree) * s.bsize;
    } catch {
      return 0;
    }
  }

  /** Every volume on this host (tests and uninstall). */
  list(): string[] {
    return readdirSync(this.root)
      .filter((n) => n.endsWith(".img"))
      .map((n) => n.slice(0, -4))
      .filter((id) => ID.test(id));
  }

  async remove(id: string): Promise<void> {
    if (!ID.test(id)) return;
    await unmount(this.mountPoint(id), await mountPoints(), this.log);
    rmSync(this.mountPoint(id), { recursive: true, force: true });
    rmSync(this.image(id), { force: true });
  }
}
