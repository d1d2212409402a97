import {
  type Config,
  ConflictError,
  checkMountPath,
  InvalidRequestError,
  LIVE_SANDBOX_STATES,
  LimitExceededError,
  NotFoundError,
  newId,
  type Runtime,
  type Store,
  type VolumeMount,
  type VolumeRecord,
} from "@berth/core";

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Largest volume (MiB); the disk limit of a sandbox's own layer is separate. */
const MAX_VOLUME_MIB = 1024 * 1024;

/** Volumes of tenants: records in the store, data in the runtime. */
export class VolumeService {
  constructor(private readonly d: { store: Store; runtime: Runtime; config: Config; replica: string }) {}

  async create(tenantId: string, name: string, sizeMiB: number): Promise<VolumeRecord> {
    if (!NAME.test(name))
      throw new InvalidRequestError("name must be 1-63 lowercase letters, digits, '.', '_' or '-'", {
        field: "name",
      });
    if (sizeMiB > MAX_VOLUME_MIB)
      throw new LimitExceededError(`a volume may have at most ${MAX_VOLUME_MIB} MiB`, {
        max: MAX_VOLUME_MIB,
      });
    const v: VolumeRecord = { id: newId("vo"), tenantId, name, sizeMiB, createdAt: new Date().toISOString() };
    // The row first: a second create of the same name fails here, before any disk is made.
    await this.d.store.transaction(async (tx) => {
      await tx.insertVolume(v);
      await tx.setReplicaOf("volumes", v.id, this.d.replica);
    });
    try {
      await this.d.runtime.createVolume(v.id, sizeMiB);
    } catch (err) {
      await this.d.store.deleteVolume(v.id);
      throw err;
    }
    return v;
  }

  async get(tenantId: string, name: string): Promise<VolumeRecord> {
    const v = await this.d.store.getVolumeByName(tenantId, name);
    if (!v) throw new NotFoundError("volume", name);
    return v;
  }

  list(tenantId: string): Promise<VolumeRecord[]> {
    return this.d.store.listVolumes(tenantId);
  }

  usedBytes(v: VolumeRecord): Promise<number> {
    return this.d.runtime.volumeUsage(v.id);
  }

  /** Deletes a volume and its data; 409 while a sandbox that is not deleted has it mounted. */
  async remove(tenantId: string, name: string): Promise<void> {
    const v = await this.get(tenantId, name);
    const users = await this.usersOf(tenantId, name);
    if (users.length > 0)
      throw new ConflictError(
        `volume '${name}' is mounted in ${users.join(", ")}; delete those sandboxes first`,
        {
          sandboxes: users,
        },
      );
    await this.d.store.deleteVolume(v.id);
    await this.d.runtime.deleteVolume(v.id);
  }

  /** The runtime's view of a create request's volumes (checked: known names, sane, distinct paths). */
  async resolve(tenantId: string, mounts: VolumeMount[]): Promise<{ id: string; mountPath: string }[]> {
    const paths = new Set<string>();
    const out: { id: string; mountPath: string }[] = [];
    for (const m of mounts) {
      checkMountPath(m.mountPath);
      if (paths.has(m.mountPath))
        throw new InvalidRequestError(`two volumes at '${m.mountPath}'`, { field: "volumes.mountPath" });
      paths.add(m.mountPath);
      out.push({ id: (await this.get(tenantId, m.name)).id, mountPath: m.mountPath });
    }
    return out;
  }

  private async usersOf(tenantId: string, name: string): Promise<string[]> {
    const users: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.d.store.listSandboxes({
        tenantId,
        states: [...LIVE_SANDBOX_STATES, "failed"],
        limit: 500,
        cursor,
      });
      for (const s of page.items)
        if (s.volumes.some((v) => v.name === name) && s.state !== "failed") users.push(s.id);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return users;
  }
}
