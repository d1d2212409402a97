import type { PortRecord, PortStore } from "@berth/core";
import type { Sql } from "../db.js";
import { type Row, str } from "../sql.js";

function toPort(r: Row): PortRecord {
  return {
    sandboxId: String(r.sandbox_id),
    tenantId: String(r.tenant_id),
    port: Number(r.port),
    public: Boolean(Number(r.public)),
    tokenHash: str(r.token_hash),
    createdAt: String(r.created_at),
  };
}

/** Exposed ports of sandboxes and their token hashes (table `ports`). */
export class PortRows implements PortStore {
  constructor(private readonly sql: Sql) {}

  async upsertPort(p: PortRecord): Promise<void> {
    await this.sql.query(
      `INSERT INTO ports (sandbox_id, port, tenant_id, public, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, port) DO UPDATE SET tenant_id = excluded.tenant_id, public = excluded.public,
         token_hash = excluded.token_hash, created_at = excluded.created_at`,
      [p.sandboxId, p.port, p.tenantId, p.public ? 1 : 0, p.tokenHash, p.createdAt],
    );
  }

  async getPort(sandboxId: string, port: number): Promise<PortRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM ports WHERE sandbox_id = ? AND port = ?", [
      sandboxId,
      port,
    ]);
    return r ? toPort(r) : null;
  }

  async listPorts(sandboxId: string): Promise<PortRecord[]> {
    const rows = await this.sql.query<Row>("SELECT * FROM ports WHERE sandbox_id = ? ORDER BY port", [
      sandboxId,
    ]);
    return rows.map(toPort);
  }

  async deletePort(sandboxId: string, port: number): Promise<boolean> {
    const rows = await this.sql.query<Row>(
      "DELETE FROM ports WHERE sandbox_id = ? AND port = ? RETURNING port",
      [sandboxId, port],
    );
    return rows.length > 0;
  }

  async deletePorts(sandboxId: string): Promise<void> {
    await this.sql.query("DELETE FROM ports WHERE sandbox_id = ?", [sandboxId]);
  }
}
