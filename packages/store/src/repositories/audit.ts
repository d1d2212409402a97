import type { AuditRecord, AuditStore } from "@berth/core";
import type { Sql } from "../db.js";
import { clampLimit, type Row, str } from "../sql.js";

function toAudit(r: Row): AuditRecord {
  return {
    id: Number(r.id),
    at: String(r.at),
    tenantId: str(r.tenant_id),
    keyId: str(r.key_id),
    method: String(r.method),
    path: String(r.path),
    status: Number(r.status),
    requestId: String(r.request_id),
  };
}

/** The audit trail (table `audit_log`; `id` is the database's, increasing). */
export class AuditRows implements AuditStore {
  constructor(private readonly sql: Sql) {}

  async appendAudit(a: Omit<AuditRecord, "id">): Promise<void> {
    await this.sql.query(
      "INSERT INTO audit_log (at, tenant_id, key_id, method, path, status, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [a.at, a.tenantId, a.keyId, a.method, a.path, a.status, a.requestId],
    );
  }

  async listAudit(q: {
    from?: string;
    to?: string;
    afterId?: number;
    limit: number;
  }): Promise<AuditRecord[]> {
    const rows = await this.sql.query<Row>(
      `SELECT * FROM audit_log WHERE id > ? AND at >= ? AND at < ? ORDER BY id LIMIT ${clampLimit(q.limit, 10_000)}`,
      [q.afterId ?? 0, q.from ?? "", q.to ?? "\uffff"],
    );
    return rows.map(toAudit);
  }
}
