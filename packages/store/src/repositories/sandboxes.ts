import type { SandboxPatch, SandboxQuery, SandboxRecord, SandboxState, SandboxStore } from "@berth/core";
import type { Sql } from "../db.js";
import { clampLimit, conflictOnDuplicate, int, json, parse, type Row, setClause, str } from "../sql.js";

/** Patchable sandbox fields and their columns. */
const COLUMN: Record<keyof SandboxPatch, { name: string; json: boolean }> = {
  tenantId: { name: "tenant_id", json: false },
  createdAt: { name: "created_at", json: false },
  state: { name: "state", json: false },
  network: { name: "network", json: true },
  labels: { name: "labels", json: true },
  idle: { name: "idle", json: true },
  timeoutSeconds: { name: "timeout_seconds", json: false },
  expiresAt: { name: "expires_at", json: false },
  lastActivityAt: { name: "last_activity_at", json: false },
  failureReason: { name: "failure_reason", json: false },
  runtimeInfo: { name: "runtime_info", json: true },
};

function toSandbox(r: Row): SandboxRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    state: String(r.state) as SandboxRecord["state"],
    template: String(r.template),
    resources: parse(r.resources),
    network: parse(r.network),
    env: parse(r.env),
    labels: parse(r.labels),
    idle: r.idle === null || r.idle === undefined ? null : parse(r.idle),
    timeoutSeconds: int(r.timeout_seconds),
    createdAt: String(r.created_at),
    expiresAt: str(r.expires_at),
    lastActivityAt: String(r.last_activity_at),
    failureReason: str(r.failure_reason),
    runtimeInfo: parse(r.runtime_info),
    volumes: r.volumes === undefined || r.volumes === null ? [] : parse(r.volumes),
    replica: str(r.replica),
  };
}

/**
 * Sandbox records (table `sandboxes`). Purging a sandbox with what hangs off it spans
 * repositories: `SqlRecords.purgeSandbox` does it in one transaction.
 */
export class SandboxRows implements Omit<SandboxStore, "purgeSandbox"> {
  constructor(private readonly sql: Sql) {}

  async insertSandbox(s: SandboxRecord): Promise<void> {
    await this.sql
      .query(
        `INSERT INTO sandboxes (id, tenant_id, state, template, resources, network, env, labels, idle,
           timeout_seconds, created_at, expires_at, last_activity_at, failure_reason, runtime_info, volumes, replica)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          s.id,
          s.tenantId,
          s.state,
          s.template,
          json(s.resources),
          json(s.network),
          json(s.env),
          json(s.labels),
          s.idle ? json(s.idle) : null,
          s.timeoutSeconds,
          s.createdAt,
          s.expiresAt,
          s.lastActivityAt,
          s.failureReason,
          json(s.runtimeInfo),
          json(s.volumes ?? []),
          s.replica ?? null,
        ],
      )
      .catch(conflictOnDuplicate(`sandbox '${s.id}'`));
  }

  async getSandbox(id: string): Promise<SandboxRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM sandboxes WHERE id = ?", [id]);
    return r ? toSandbox(r) : null;
  }

  async updateSandbox(id: string, patch: SandboxPatch): Promise<SandboxRecord | null> {
    const { sets, params } = setClause(patch, COLUMN);
    if (sets.length === 0) return this.getSandbox(id);
    const [r] = await this.sql.query<Row>(
      `UPDATE sandboxes SET ${sets.join(", ")} WHERE id = ? RETURNING *`,
      [...params, id],
    );
    return r ? toSandbox(r) : null;
  }

  async listSandboxes(q: SandboxQuery): Promise<{ items: SandboxRecord[]; nextCursor: string | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.tenantId !== undefined) {
      where.push("tenant_id = ?");
      params.push(q.tenantId);
    }
    if (q.states) {
      if (q.states.length === 0) return { items: [], nextCursor: null };
      where.push(`state IN (${q.states.map(() => "?").join(", ")})`);
      params.push(...q.states);
    }
    const sqlite = this.sql.dialect === "sqlite";
    for (const [k, v] of Object.entries(q.labels ?? {})) {
      where.push(sqlite ? "json_extract(labels, ?) = ?" : "(labels::jsonb ->> ?) = ?");
      params.push(sqlite ? `$."${k.replaceAll('"', '\\"')}"` : k, v);
    }
    if (q.replica !== undefined) {
      where.push("(replica = ? OR replica IS NULL)");
      params.push(q.replica);
    }
    if (q.cursor) {
      where.push("id > ?");
      params.push(q.cursor);
    }
    const limit = clampLimit(q.limit ?? 100, 1000);
    const rows = await this.sql.query<Row>(
      `SELECT * FROM sandboxes ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ${limit + 1}`,
      params,
    );
    const items = rows.slice(0, limit).map(toSandbox);
    return { items, nextCursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
  }

  /** Deletes the sandbox's own row (see `SqlRecords.purgeSandbox` for the rest). */
  async deleteSandbox(id: string): Promise<void> {
    await this.sql.query("DELETE FROM sandboxes WHERE id = ?", [id]);
  }

  async countSandboxesByState(): Promise<Partial<Record<SandboxState, number>>> {
    const rows = await this.sql.query<Row>("SELECT state, COUNT(*) AS n FROM sandboxes GROUP BY state");
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
  }
}
