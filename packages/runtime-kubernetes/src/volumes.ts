import { NotFoundError, type SandboxVolumes } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import type { Cluster } from "./cluster.js";
import { runText } from "./in-pod.js";
import { claim, LABEL, MANAGED_BY, volumeClaimName } from "./objects.js";
import { isRunning } from "./pod-status.js";

/** Volumes as PersistentVolumeClaims (ReadWriteOnce: sandboxes sharing one must land on one node). */
export class ClaimVolumes implements SandboxVolumes {
  constructor(
    private readonly cluster: Cluster,
    private readonly o: { storageClass?: string; client: (sandboxId: string) => SupervisorClient },
  ) {}

  /** A volume is a claim of `sizeMiB`. */
  async createVolume(id: string, sizeMiB: number): Promise<void> {
    await this.cluster.createClaim(
      claim({
        name: volumeClaimName(id),
        sizeMiB,
        labels: { [LABEL.role]: "volume" },
        storageClass: this.o.storageClass,
      }),
    );
  }

  async deleteVolume(id: string): Promise<void> {
    await this.cluster.deleteClaim(volumeClaimName(id));
  }

  /** Bytes in use, measured in a running sandbox that mounts the volume; 0 while none does. */
  async volumeUsage(id: string): Promise<number> {
    if (!(await this.cluster.readClaim(volumeClaimName(id)))) throw new NotFoundError("volume", id);
    for (const pod of await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`)) {
      const sandbox = pod.metadata?.labels?.[LABEL.sandbox];
      const vol = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim?.claimName === volumeClaimName(id));
      const mount = pod.spec?.containers[0]?.volumeMounts?.find((m) => m.name === vol?.name);
      if (!sandbox || !vol || !mount || !isRunning(pod)) continue;
      const { out, status } = await runText(this.o.client(sandbox), ["du", "-sk", mount.mountPath]);
      const kib = /^(\d{1,15})\s/.exec(out);
      if (status.exitCode === 0 && kib) return Number(kib[1]) * 1024;
    }
    return 0;
  }
}
