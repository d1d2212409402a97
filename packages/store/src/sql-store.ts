import {
  type ApiKeyRecord,
  type AuditRecord,
  ConflictError,
  type PortRecord,
  type ProcessRecord,
  type ReplicaRecord,
  type SandboxEvent,
  type SandboxPatch,
  type SandboxQuery,
  type SandboxRecord,
  type SandboxRun,
  type SandboxState,
  type SessionEvent,
  type SessionPatch,
  type SessionRecord,
  type SessionState,
  type SnapshotRecord,
  type Store,
  type Tenant,
  type VolumeRecord,
  type WakeProcess,
} from "@berth/core";
import type { Db } from "./db.js";
import { ManagedAgentRows } from "./managed-agents.js";
import { migrate } from "./migrations.js";
import {
  COLUMN,
  type Row,
  toAudit,
  toEvent,
  toKey,
  toPort,
  toProcess,
  toSandbox,
  toSnapshot,
  toVolume,
} from "./rows.js";
import { SessionRows } from "./sessions.js";

const json = (v: unknown) => JSON.stringify(v);

/** Unique-key violations as 409s; everything else as is. */
function conflictOnDuplicate(what: string) {
  return (err: unknown): never => {
    const code = String((err as { code?: unknown }).code ?? "");
    if (code === "23505" || code.startsWith("SQLITE_CONSTRAINT"))
      throw new ConflictError(`${what} already exists`);
    throw err;
  };
}

/** The Store on any SQL database behind `Db` (SQLite and PostgreSQL run the same queries). */
export class SqlStore implements Store {
  private readonly sessions: SessionRows;
  /** Claude Managed Agents integrations (a repository of its own). */
  readonly managedAgents: ManagedAgentRows;

  constructor(private readonly db: Db) {
    this.sessions = new SessionRows(db);
    this.managedAgents = new ManagedAgentRows(db);
  }

  insertSession(s: SessionRecord): Promise<void> {
    return this.sessions.insert(s);
  }

  getSession(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }

  updateSession(id: string, patch: SessionPatch): Promise<SessionRecord | null> {
    return this.sessions.update(id, patch);
  }

  listSessions(q: {
    tenantId?: string;
    states?: SessionState[];
    sandboxId?: string;
    limit?: number;
  }): Promise<SessionRecord[]> {
    return this.sessions.list(q);
  }

  appendSessionEvent(e: Omit<SessionEvent, "seq">): Promise<SessionEvent> {
    return this.sessions.appendEvent(e);
  }

  listSessionEvents(sessionId: string, afterSeq: number, limit?: number): Promise<SessionEvent[]> {
    return this.sessions.listEvents(sessionId, afterSeq, limit);
  }

  get kind(): "sqlite" | "postgres" {
    return this.db.dialect;
  }

  async migrate(): Promise<void> {
    await migrate(this.db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async createTenant(t: Tenant): Promise<void> {
    await this.db
      .query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", [t.id, t.name, t.createdAt])
      .catch(conflictOnDuplicate(`tenant '${t.id}'`));
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const [r] = await this.db.query<Row>("SELECT * FROM tenants WHERE id = ?", [id]);
    return r ? tenantOf(r) : null;
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.db.query<Row>("SELECT * FROM tenants ORDER BY id");
    return rows.map(tenantOf);
  }

  async setTenantBudget(id: string, monthlyBudgetUsd: number | null): Promise<boolean> {
    const rows = await this.db.query<Row>(
      "UPDATE tenants SET monthly_budget_usd = ? WHERE id = ? RETURNING id",
      [monthlyBudgetUsd, id],
    );
    return rows.length > 0;
  }

  async addTenantSpend(id: string, month: string, usd: number): Promise<void> {
    await this.db.query(
      `INSERT INTO tenant_spend (tenant_id, month, usd) VALUES (?, ?, ?)
       ON CONFLICT (tenant_id, month) DO UPDATE SET usd = tenant_spend.usd + excluded.usd`,
      [id, month, usd],
    );
  }

  async tenantSpend(id: string, month: string): Promise<number> {
    const [r] = await this.db.query<Row>("SELECT usd FROM tenant_spend WHERE tenant_id = ? AND month = ?", [
      id,
      month,
    ]);
    return r ? Number(r.usd) : 0;
  }

  async createApiKey(k: ApiKeyRecord): Promise<void> {
    await this.db
      .query(
        "INSERT INTO api_keys (id, tenant_id, hash, admin, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
        [k.id, k.tenantId, k.hash, k.admin ? 1 : 0, k.createdAt, k.revokedAt],
      )
      .catch(conflictOnDuplicate(`key '${k.id}'`));
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const [r] = await this.db.query<Row>("SELECT * FROM api_keys WHERE hash = ?", [hash]);
    return r ? toKey(r) : null;
  }

  async listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const rows = tenantId
      ? await this.db.query<Row>("SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id", [
          tenantId,
        ])
      : await this.db.query<Row>("SELECT * FROM api_keys ORDER BY created_at, id");
    return rows.map(toKey);
  }

  async revokeApiKey(id: string, at: string): Promise<void> {
    await this.db.query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [at, id]);
  }

  async insertSandbox(s: SandboxRecord): Promise<void> {
    await this.db
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
    const [r] = await this.db.query<Row>("SELECT * FROM sandboxes WHERE id = ?", [id]);
    return r ? toSandbox(r) : null;
  }

  async updateSandbox(id: string, patch: SandboxPatch): Promise<SandboxRecord | null> {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const col = COLUMN[key as keyof typeof COLUMN];
      if (!col) continue;
      sets.push(`${col.name} = ?`);
      params.push(col.json ? (value === null ? null : json(value)) : value);
    }
    if (sets.length === 0) return this.getSandbox(id);
    const [r] = await this.db.query<Row>(`UPDATE sandboxes SET ${sets.join(", ")} WHERE id = ? RETURNING *`, [
      ...params,
      id,
    ]);
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
    for (const [k, v] of Object.entries(q.labels ?? {})) {
      where.push(this.db.dialect === "sqlite" ? "json_extract(labels, ?) = ?" : "(labels::jsonb ->> ?) = ?");
      params.push(this.db.dialect === "sqlite" ? `$."${k.replaceAll('"', '\\"')}"` : k, v);
    }
    if (q.replica !== undefined) {
      where.push("(replica = ? OR replica IS NULL)");
      params.push(q.replica);
    }
    if (q.cursor) {
      where.push("id > ?");
      params.push(q.cursor);
    }
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const rows = await this.db.query<Row>(
      `SELECT * FROM sandboxes ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ${limit + 1}`,
      params,
    );
    const items = rows.slice(0, limit).map(toSandbox);
    return { items, nextCursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
  }

  async purgeSandbox(id: string): Promise<void> {
    await this.db.query("DELETE FROM processes WHERE sandbox_id = ?", [id]);
    await this.db.query("DELETE FROM ports WHERE sandbox_id = ?", [id]);
    await this.db.query("DELETE FROM sandbox_events WHERE sandbox_id = ?", [id]);
    await this.db.query("DELETE FROM sandbox_runs WHERE sandbox_id = ?", [id]);
    await this.db.query("DELETE FROM sandboxes WHERE id = ?", [id]);
  }

  async startSandboxRun(sandboxId: string, at: string): Promise<void> {
    // One statement, so two callers cannot both open a stretch.
    await this.db.query(
      `INSERT INTO sandbox_runs (sandbox_id, started_at, ended_at)
       SELECT ?, ?, NULL WHERE NOT EXISTS (SELECT 1 FROM sandbox_runs WHERE sandbox_id = ? AND ended_at IS NULL)`,
      [sandboxId, at, sandboxId],
    );
  }

  async endSandboxRun(sandboxId: string, at: string): Promise<void> {
    await this.db.query("UPDATE sandbox_runs SET ended_at = ? WHERE sandbox_id = ? AND ended_at IS NULL", [
      at,
      sandboxId,
    ]);
  }

  async listSandboxRuns(sandboxIds: string[]): Promise<SandboxRun[]> {
    if (sandboxIds.length === 0) return [];
    const rows = await this.db.query<Row>(
      `SELECT * FROM sandbox_runs WHERE sandbox_id IN (${sandboxIds.map(() => "?").join(", ")}) ORDER BY started_at`,
      sandboxIds,
    );
    return rows.map((r) => ({
      sandboxId: String(r.sandbox_id),
      startedAt: String(r.started_at),
      endedAt: r.ended_at === null || r.ended_at === undefined ? null : String(r.ended_at),
    }));
  }

  async deleteSandboxRuns(sandboxId: string): Promise<void> {
    await this.db.query("DELETE FROM sandbox_runs WHERE sandbox_id = ?", [sandboxId]);
  }

  async upsertProcess(p: ProcessRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO processes (sandbox_id, pid, cmd, cwd, state, exit_code, started_at, exited_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, pid) DO UPDATE SET cmd = excluded.cmd, cwd = excluded.cwd, state = excluded.state,
         exit_code = excluded.exit_code, started_at = excluded.started_at, exited_at = excluded.exited_at`,
      [p.sandboxId, p.pid, json(p.cmd), p.cwd, p.state, p.exitCode, p.startedAt, p.exitedAt],
    );
  }

  async listProcesses(sandboxId: string): Promise<ProcessRecord[]> {
    const rows = await this.db.query<Row>("SELECT * FROM processes WHERE sandbox_id = ? ORDER BY pid", [
      sandboxId,
    ]);
    return rows.map(toProcess);
  }

  async insertSnapshot(s: SnapshotRecord): Promise<void> {
    await this.db
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
    const [r] = await this.db.query<Row>("SELECT * FROM snapshots WHERE id = ?", [id]);
    return r ? toSnapshot(r) : null;
  }

  async listSnapshots(tenantId: string): Promise<SnapshotRecord[]> {
    const rows = await this.db.query<Row>(
      "SELECT * FROM snapshots WHERE tenant_id = ? ORDER BY created_at DESC, id",
      [tenantId],
    );
    return rows.map(toSnapshot);
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.db.query("DELETE FROM snapshots WHERE id = ?", [id]);
  }

  async upsertPort(p: PortRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO ports (sandbox_id, port, tenant_id, public, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, port) DO UPDATE SET tenant_id = excluded.tenant_id, public = excluded.public,
         token_hash = excluded.token_hash, created_at = excluded.created_at`,
      [p.sandboxId, p.port, p.tenantId, p.public ? 1 : 0, p.tokenHash, p.createdAt],
    );
  }

  async getPort(sandboxId: string, port: number): Promise<PortRecord | null> {
    const [r] = await this.db.query<Row>("SELECT * FROM ports WHERE sandbox_id = ? AND port = ?", [
      sandboxId,
      port,
    ]);
    return r ? toPort(r) : null;
  }

  async listPorts(sandboxId: string): Promise<PortRecord[]> {
    const rows = await this.db.query<Row>("SELECT * FROM ports WHERE sandbox_id = ? ORDER BY port", [
      sandboxId,
    ]);
    return rows.map(toPort);
  }

  async deletePort(sandboxId: string, port: number): Promise<boolean> {
    const rows = await this.db.query<Row>(
      "DELETE FROM ports WHERE sandbox_id = ? AND port = ? RETURNING port",
      [sandboxId, port],
    );
    return rows.length > 0;
  }

  async deletePorts(sandboxId: string): Promise<void> {
    await this.db.query("DELETE FROM ports WHERE sandbox_id = ?", [sandboxId]);
  }

  async insertVolume(v: VolumeRecord): Promise<void> {
    await this.db
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
    const [r] = await this.db.query<Row>("SELECT * FROM volumes WHERE tenant_id = ? AND name = ?", [
      tenantId,
      name,
    ]);
    return r ? toVolume(r) : null;
  }

  async listVolumes(tenantId: string): Promise<VolumeRecord[]> {
    return (
      await this.db.query<Row>("SELECT * FROM volumes WHERE tenant_id = ? ORDER BY name", [tenantId])
    ).map(toVolume);
  }

  async deleteVolume(id: string): Promise<void> {
    await this.db.query("DELETE FROM volumes WHERE id = ?", [id]);
  }

  async appendEvent(e: Omit<SandboxEvent, "seq">): Promise<SandboxEvent> {
    const [r] = await this.db.query<Row>(
      "INSERT INTO sandbox_events (sandbox_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq",
      [e.sandboxId, e.type, json(e.data), e.at],
    );
    return { ...e, seq: Number(r?.seq) };
  }

  async saveWakeProcess(p: WakeProcess): Promise<void> {
    await this.db.query(
      `INSERT INTO wake_processes (sandbox_id, pid, cmd, cwd, env) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, pid) DO UPDATE SET cmd = excluded.cmd, cwd = excluded.cwd, env = excluded.env`,
      [p.sandboxId, p.pid, json(p.cmd), p.cwd, json(p.env)],
    );
  }

  async listWakeProcesses(sandboxId: string): Promise<WakeProcess[]> {
    const rows = await this.db.query<Row>("SELECT * FROM wake_processes WHERE sandbox_id = ? ORDER BY pid", [
      sandboxId,
    ]);
    return rows.map((r) => ({
      sandboxId: String(r.sandbox_id),
      pid: Number(r.pid),
      cmd: JSON.parse(String(r.cmd)),
      cwd: r.cwd === null || r.cwd === undefined ? null : String(r.cwd),
      env: JSON.parse(String(r.env)),
    }));
  }

  async deleteWakeProcess(sandboxId: string, pid: number): Promise<void> {
    await this.db.query("DELETE FROM wake_processes WHERE sandbox_id = ? AND pid = ?", [sandboxId, pid]);
  }

  async lastEvent(sandboxId: string): Promise<SandboxEvent | null> {
    const [r] = await this.db.query<Row>(
      "SELECT * FROM sandbox_events WHERE sandbox_id = ? ORDER BY seq DESC LIMIT 1",
      [sandboxId],
    );
    return r ? toEvent(r) : null;
  }

  async listEvents(sandboxId: string, afterSeq: number, limit = 1000): Promise<SandboxEvent[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM sandbox_events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ${Math.min(Math.max(limit, 1), 10_000)}`,
      [sandboxId, afterSeq],
    );
    return rows.map(toEvent);
  }

  async countSessionsByState(): Promise<Record<string, number>> {
    const rows = await this.db.query<Row>("SELECT state, COUNT(*) AS n FROM sessions GROUP BY state");
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
  }

  async countSandboxesByState(): Promise<Partial<Record<SandboxState, number>>> {
    const rows = await this.db.query<Row>("SELECT state, COUNT(*) AS n FROM sandboxes GROUP BY state");
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
  }

  async claimUnowned(replica: string): Promise<void> {
    for (const table of ["sandboxes", "snapshots", "volumes"])
      await this.db.query(`UPDATE ${table} SET replica = ? WHERE replica IS NULL`, [replica]);
  }

  async upsertReplica(r: ReplicaRecord): Promise<void> {
    await this.db.query(
      "INSERT INTO replicas (id, url, seen_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at",
      [r.id, r.url, r.seenAt],
    );
  }

  async getReplica(id: string): Promise<ReplicaRecord | null> {
    const [r] = await this.db.query<Row>("SELECT * FROM replicas WHERE id = ?", [id]);
    return r ? { id: String(r.id), url: String(r.url), seenAt: String(r.seen_at) } : null;
  }

  async countReplicas(): Promise<number> {
    const [r] = await this.db.query<Row>("SELECT COUNT(*) AS n FROM replicas");
    return Number(r?.n ?? 0);
  }

  async replicaOf(kind: "snapshots" | "volumes", id: string): Promise<string | null> {
    const [r] = await this.db.query<Row>(
      `SELECT replica FROM ${kind === "snapshots" ? "snapshots" : "volumes"} WHERE id = ?`,
      [id],
    );
    return r?.replica === null || r?.replica === undefined ? null : String(r.replica);
  }

  async setReplicaOf(kind: "snapshots" | "volumes", id: string, replica: string): Promise<void> {
    await this.db.query(
      `UPDATE ${kind === "snapshots" ? "snapshots" : "volumes"} SET replica = ? WHERE id = ?`,
      [replica, id],
    );
  }

  async appendAudit(a: Omit<AuditRecord, "id">): Promise<void> {
    await this.db.query(
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
    const rows = await this.db.query<Row>(
      `SELECT * FROM audit_log WHERE id > ? AND at >= ? AND at < ? ORDER BY id LIMIT ${Math.min(Math.max(q.limit, 1), 10_000)}`,
      [q.afterId ?? 0, q.from ?? "", q.to ?? "\uffff"],
    );
    return rows.map(toAudit);
  }
}

function tenantOf(r: Row): Tenant {
  return {
    id: String(r.id),
    name: String(r.name),
    createdAt: String(r.created_at),
    monthlyBudgetUsd:
      r.monthly_budget_usd === null || r.monthly_budget_usd === undefined
        ? null
        : Number(r.monthly_budget_usd),
  };
}
