import { existsSync, rmSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, NotFoundError, type SandboxVolumes } from "@berth/core";
import { Volumes } from "@berth/linux-host";

/**
 * Volumes are the local driver's: an ext4 image of the volume's size, loop-mounted on the host
 * and bound into each container that uses it, so the kernel enforces the size. Volumes made
 * before volumes had a size are plain directories, still served.
 */
export class DockerVolumes implements SandboxVolumes {
  private readonly volumes: Volumes;

  constructor(
    private readonly root: string,
    log: Logger,
  ) {
    this.volumes = new Volumes(join(root, "volumes"), log);
  }

  /** Mounts every volume that is not mounted (after a reboot or a crash). */
  start(): Promise<void> {
    return this.volumes.start();
  }

  createVolume(id: string, sizeMiB: number): Promise<void> {
    return this.volumes.create(id, sizeMiB);
  }

  async deleteVolume(id: string): Promise<void> {
    await this.volumes.remove(id);
    rmSync(this.legacyDir(id), { recursive: true, force: true });
  }

  async volumeUsage(id: string): Promise<number> {
    if (existsSync(this.volumes.image(id))) return this.volumes.usedBytes(id);
    if (!existsSync(this.legacyDir(id))) throw new NotFoundError("volume", id);
    return duBytes(this.legacyDir(id));
  }

  /** The host path bound in: the volume's mount, or (made before volumes had a size) its plain directory. */
  hostPath(id: string): string {
    return existsSync(this.volumes.image(id)) ? this.volumes.mountPoint(id) : this.legacyDir(id);
  }

  /** Removes every volume (tests, uninstall; after every sandbox is gone). */
  async purge(): Promise<void> {
    for (const id of this.volumes.list()) await this.volumes.remove(id);
    rmSync(join(this.root, "volumes"), { recursive: true, force: true });
  }

  /** A volume made before volumes had a size: a plain directory. */
  private legacyDir(id: string): string {
    return join(this.root, "volumes", id);
  }
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const st = await lstat(p).catch(() => null);
    if (!st) continue;
    total += st.blocks * 512;
    if (st.isDirectory()) total += await duBytes(p);
  }
  return total;
}
