import type {
  ManagedAgentRecord,
  ManagedAgentRepository,
  ManagedAgentState,
  ManagedItemRecord,
  ManagedItemState,
} from "@berth/core";
import type { Sql } from "../db.js";
import type { Row } from "../sql.js";

const orNull = (v: unknown) => (v === null || v === undefined ? null : String(v));
const marks = (n: number) => Array.from({ length: n }, () => "?").join(", ");

function toIntegration(r: Row): ManagedAgentRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    replica: String(r.replica),
    environmentId: String(r.environment_id),
    baseUrl: String(r.base_url),
    keyCipher: String(r.key_cipher),
    webhookCipher: orNull(r.webhook_cipher),
    maxConcurrent: Number(r.max_concurrent),
    sandbox: JSON.parse(String(r.sandbox)),
    state: String(r.state) as ManagedAgentState,
    failure: orNull(r.failure),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}

function toItem(r: Row): ManagedItemRecord {
  return {
    workId: String(r.work_id),
    integrationId: String(r.integration_id),
    sessionId: String(r.session_id),
    sandboxId: orNull(r.sandbox_id),
    state: String(r.state) as ManagedItemState,
    startedAt: String(r.started_at),
    endedAt: orNull(r.ended_at),
    failure: orNull(r.failure),
  };
}

/** Managed Agents integrations and their work items on any SQL database behind `Sql`. */
export class ManagedAgentRows implements ManagedAgentRepository {
  constructor(private readonly db: Sql) {}

  async insert(r: ManagedAgentRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO managed_agents (id, tenant_id, replica, environment_id, base_url, key_cipher, webhook_cipher,
         max_concurrent, sandbox, state, failure, created_at, updated_at) VALUES (${marks(13)})`,
      [
        r.id,
        r.tenantId,
        r.replica,
        r.environmentId,
        r.baseUrl,
        r.keyCipher,
        r.webhookCipher,
        r.maxConcurrent,
        JSON.stringify(r.sandbox),
        r.state,
        r.failure,
        r.createdAt,
        r.updatedAt,
      ],
    );
  }

  async get(id: string): Promise<ManagedAgentRecord | null> {
    const rows = await this.db.query<Row>("SELECT * FROM managed_agents WHERE id = ?", [id]);
    return rows[0] ? toIntegration(rows[0]) : null;
  }

  async list(q: { tenantId?: string; states?: ManagedAgentState[] }): Promise<ManagedAgentRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.tenantId !== undefined) {
      where.push("tenant_id = ?");
      params.push(q.tenantId);
    }
    if (q.states) {
      where.push(`state IN (${marks(q.states.length)})`);
      params.push(...q.states);
    }
    const rows = await this.db.query<Row>(
      `SELECT * FROM managed_agents ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id`,
      params,
    );
    return rows.map(toIntegration);
  }

  async update(
    id: string,
    patch: Partial<Pick<ManagedAgentRecord, "state" | "failure">>,
  ): Promise<ManagedAgentRecord | null> {
    const sets = ["updated_at = ?"];
    const params: unknown[] = [new Date().toISOString()];
    if (patch.state !== undefined) {
      sets.push("state = ?");
      params.push(patch.state);
    }
    if (patch.failure !== undefined) {
      sets.push("failure = ?");
      params.push(patch.failure);
    }
    await this.db.query(`UPDATE managed_agents SET ${sets.join(", ")} WHERE id = ?`, [...params, id]);
    return this.get(id);
  }

  async insertItem(i: ManagedItemRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO managed_agent_items (work_id, integration_id, session_id, sandbox_id, state, started_at,
         ended_at, failure) VALUES (${marks(8)})
       ON CONFLICT (integration_id, work_id) DO UPDATE SET session_id = excluded.session_id,
         sandbox_id = excluded.sandbox_id, state = excluded.state, started_at = excluded.started_at,
         ended_at = excluded.ended_at, failure = excluded.failure`,
      [i.workId, i.integrationId, i.sessionId, i.sandboxId, i.state, i.startedAt, i.endedAt, i.failure],
    );
  }

  async updateItem(
    integrationId: string,
    workId: string,
    patch: Partial<Pick<ManagedItemRecord, "state" | "sandboxId" | "endedAt" | "failure">>,
  ): Promise<void> {
    const columns = { state: "state", sandboxId: "sandbox_id", endedAt: "ended_at", failure: "failure" };
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, column] of Object.entries(columns)) {
      const v = patch[k as keyof typeof patch];
      if (v === undefined) continue;
      sets.push(`${column} = ?`);
      params.push(v);
    }
    if (!sets.length) return;
    await this.db.query(
      `UPDATE managed_agent_items SET ${sets.join(", ")} WHERE integration_id = ? AND work_id = ?`,
      [...params, integrationId, workId],
    );
  }

  async listItems(integrationId: string, limit = 100): Promise<ManagedItemRecord[]> {
    const rows = await this.db.query<Row>(
      "SELECT * FROM managed_agent_items WHERE integration_id = ? ORDER BY started_at DESC, work_id LIMIT ?",
      [integrationId, limit],
    );
    return rows.map(toItem);
  }

  async listItemsIn(states: ManagedItemState[]): Promise<ManagedItemRecord[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM managed_agent_items WHERE state IN (${marks(states.length)}) ORDER BY started_at`,
      states,
    );
    return rows.map(toItem);
  }

  async listItemSandboxes(tenantId?: string): Promise<string[]> {
    const rows = await this.db.query<Row>(
      `SELECT i.sandbox_id FROM managed_agent_items i JOIN managed_agents a ON a.id = i.integration_id
       WHERE i.sandbox_id IS NOT NULL${tenantId === undefined ? "" : " AND a.tenant_id = ?"}`,
      tenantId === undefined ? [] : [tenantId],
    );
    return rows.map((r) => String(r.sandbox_id));
  }

  async countItems(integrationId: string): Promise<Record<string, number>> {
    const rows = await this.db.query<Row>(
      "SELECT state, COUNT(*) AS n FROM managed_agent_items WHERE integration_id = ? GROUP BY state",
      [integrationId],
    );
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
  }
}
