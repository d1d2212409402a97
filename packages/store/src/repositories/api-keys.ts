import type { ApiKeyRecord, ApiKeyStore } from "@berth/core";
import type { Sql } from "../db.js";
import { conflictOnDuplicate, type Row, str } from "../sql.js";

function toKey(r: Row): ApiKeyRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    hash: String(r.hash),
    admin: Boolean(Number(r.admin)),
    createdAt: String(r.created_at),
    revokedAt: str(r.revoked_at),
  };
}

/** API keys by hash (table `api_keys`). */
export class ApiKeyRows implements ApiKeyStore {
  constructor(private readonly sql: Sql) {}

  async createApiKey(k: ApiKeyRecord): Promise<void> {
    await this.sql
      .query(
        "INSERT INTO api_keys (id, tenant_id, hash, admin, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
        [k.id, k.tenantId, k.hash, k.admin ? 1 : 0, k.createdAt, k.revokedAt],
      )
      .catch(conflictOnDuplicate(`key '${k.id}'`));
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM api_keys WHERE hash = ?", [hash]);
    return r ? toKey(r) : null;
  }

  async listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const rows = tenantId
      ? await this.sql.query<Row>("SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id", [
          tenantId,
        ])
      : await this.sql.query<Row>("SELECT * FROM api_keys ORDER BY created_at, id");
    return rows.map(toKey);
  }

  async revokeApiKey(id: string, at: string): Promise<void> {
    await this.sql.query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [at, id]);
  }
}
