import type { VolumeRecord, VolumeStore } from "@berth/core";
import type { Sql } from "../db.js";
import { conflictOnDuplicate, type Row } from "../sql.js";

function toVolume(r: Row): VolumeRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    name: String(r.name),
    sizeMiB: Number(r.size_mib),
    createdAt: String(r.created_at),
  };
}

/** Tenants' named volumes (table `volumes`, unique per tenant and name). */
export class VolumeRows implements VolumeStore {
  constructor(private readonly sql: Sql) {}

  async insertVolume(v: VolumeRecord): Promise<void> {
    await this.sql
      .query("INSERT INTO volumes (id, tenant_id, name, size_mib, created_at) VALUES (?, ?, ?, ?, ?)", [
        v.id,
        v.tenantId,
        v.name,
        v.sizeMiB,
        v.createdAt,
      ])
      .catch(conflictOnDuplicate(`volume '${v.name}'`));
  }

  async getVolumeByName(tenantId: string, name: string): Promise<VolumeRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM volumes WHERE tenant_id = ? AND name = ?", [
      tenantId,
      name,
    ]);
    return r ? toVolume(r) : null;
  }

  async listVolumes(tenantId: string): Promise<VolumeRecord[]> {
    const rows = await this.sql.query<Row>("SELECT * FROM volumes WHERE tenant_id = ? ORDER BY name", [
      tenantId,
    ]);
    return rows.map(toVolume);
  }

  async deleteVolume(id: string): Promise<void> {
    await this.sql.query("DELETE FROM volumes WHERE id = ?", [id]);
  }
}
