import type { SnapshotRecord, VolumeMount } from "@berth/core";

/**
 * What the sandbox service needs of snapshots and volumes, declared here so that the service
 * does not import their services (they import it).
 */

/** Where snapshots come from (the snapshot service; absent: none). */
export interface SnapshotSource {
  get(tenantId: string, id: string): Promise<SnapshotRecord>;
  path(id: string): string;
}

/** Where volumes come from (the volume service; absent: none). */
export interface VolumeSource {
  resolve(tenantId: string, mounts: VolumeMount[]): Promise<{ id: string; mountPath: string }[]>;
}
