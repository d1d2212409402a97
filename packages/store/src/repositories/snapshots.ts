import type { SnapshotRecord, SnapshotStore } from "@berth/core";
import type { Sql } from "../db.js";
import { conflictOnDuplicate, json, parse, type Row, str } from "../sql.js";

function toSnapshot(r: Row): SnapshotRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    sandboxId: String(r.sandbox_id),
    name: str(r.name),
    template: String(r.template),
    resources: parse(r.resources),
    env: parse(r.env),
    sizeBytes: Number(r.size_bytes),
    createdAt: String(r.created_at),
  };
}

/** Snapshot records (table `snapshots`; which replica holds the files: `ReplicaRows`). */
export class SnapshotRows implements SnapshotStore {
  constructor(private readonly sql: Sql) {}

  async insertSnapshot(s: SnapshotRecord): Promise<void> {
    await this.sql
      .query(
        `INSERT INTO snapshots (id, tenant_id, sandbox_id, name, template, resources, env, size_bytes, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          s.id,
          s.tenantId,
          s.sandboxId,
          s.name,
          s.template,
          json(s.resources),
          json(s.env),
          s.sizeBytes,
          s.createdAt,
        ],
      )
      .catch(conflictOnDuplicate(`snapshot '${s.id}'`));
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM snapshots WHERE id = ?", [id]);
    return r ? toSnapshot(r) : null;
  }

  async listSnapshots(tenantId: string): Promise<SnapshotRecord[]> {
    const rows = await this.sql.query<Row>(
      "SELECT * FROM snapshots WHERE tenant_id = ? ORDER BY created_at DESC, id",
      [tenantId],
    );
    return rows.map(toSnapshot);
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.sql.query("DELETE FROM snapshots WHERE id = ?", [id]);
  }
}
