import type { SessionEvent, SessionPatch, SessionRecord, SessionState, SessionStore } from "@berth/core";
import type { Sql } from "../db.js";
import { clampLimit, json, parse, type Row, setClause, str } from "../sql.js";

/** Session fields as columns (json: stored as JSON text). */
const COLUMN: Record<keyof SessionPatch, { name: string; json: boolean }> = {
  state: { name: "state", json: false },
  agentSessionId: { name: "agent_session_id", json: false },
  turns: { name: "turns", json: false },
  usage: { name: "usage", json: true },
  tokensUsd: { name: "tokens_usd", json: false },
  result: { name: "result", json: true },
  failureReason: { name: "failure_reason", json: false },
  failure: { name: "failure", json: true },
  endedAt: { name: "ended_at", json: false },
};

function toSession(r: Row): SessionRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    sandboxId: String(r.sandbox_id),
    pattern: String(r.pattern) as SessionRecord["pattern"],
    state: String(r.state) as SessionState,
    agentSessionId: str(r.agent_session_id),
    prompt: str(r.prompt),
    webhooks: r.webhooks === null || r.webhooks === undefined ? null : parse(r.webhooks),
    options: parse(r.options),
    turns: Number(r.turns),
    usage: parse(r.usage),
    tokensUsd: Number(r.tokens_usd),
    result: r.result === null || r.result === undefined ? null : parse(r.result),
    failureReason: str(r.failure_reason),
    failure: r.failure === null || r.failure === undefined ? null : parse(r.failure),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
    endedAt: str(r.ended_at),
  };
}

function toSessionEvent(r: Row): SessionEvent {
  return {
    seq: Number(r.seq),
    sessionId: String(r.session_id),
    type: String(r.type) as SessionEvent["type"],
    data: parse(r.data),
    at: String(r.at),
  };
}

/** Agent sessions (table `sessions`) and their event logs (`session_events`). */
export class SessionRows implements SessionStore {
  constructor(private readonly sql: Sql) {}

  async insertSession(s: SessionRecord): Promise<void> {
    await this.sql.query(
      `INSERT INTO sessions (id, tenant_id, sandbox_id, pattern, state, agent_session_id, prompt, webhooks, options,
         turns, usage, tokens_usd, result, failure_reason, failure, created_at, updated_at, ended_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        s.id,
        s.tenantId,
        s.sandboxId,
        s.pattern,
        s.state,
        s.agentSessionId,
        s.prompt,
        s.webhooks === null ? null : json(s.webhooks),
        json(s.options),
        s.turns,
        json(s.usage),
        s.tokensUsd,
        s.result === null ? null : json(s.result),
        s.failureReason,
        s.failure === null ? null : json(s.failure),
        s.createdAt,
        s.updatedAt,
        s.endedAt,
      ],
    );
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM sessions WHERE id = ?", [id]);
    return r ? toSession(r) : null;
  }

  async updateSession(id: string, patch: SessionPatch): Promise<SessionRecord | null> {
    const { sets, params } = setClause(patch, COLUMN);
    sets.unshift("updated_at = ?");
    params.unshift(new Date().toISOString());
    const [r] = await this.sql.query<Row>(`UPDATE sessions SET ${sets.join(", ")} WHERE id = ? RETURNING *`, [
      ...params,
      id,
    ]);
    return r ? toSession(r) : null;
  }

  async listSessions(q: {
    tenantId?: string;
    states?: SessionState[];
    sandboxId?: string;
    limit?: number;
  }): Promise<SessionRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.tenantId !== undefined) {
      where.push("tenant_id = ?");
      params.push(q.tenantId);
    }
    if (q.states) {
      if (q.states.length === 0) return [];
      where.push(`state IN (${q.states.map(() => "?").join(", ")})`);
      params.push(...q.states);
    }
    if (q.sandboxId !== undefined) {
      where.push("sandbox_id = ?");
      params.push(q.sandboxId);
    }
    const limit = clampLimit(q.limit ?? 1000, 10_000);
    const rows = await this.sql.query<Row>(
      `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT ${limit}`,
      params,
    );
    return rows.map(toSession);
  }

  async appendSessionEvent(e: Omit<SessionEvent, "seq">): Promise<SessionEvent> {
    const [r] = await this.sql.query<Row>(
      "INSERT INTO session_events (session_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq",
      [e.sessionId, e.type, json(e.data), e.at],
    );
    return { ...e, seq: Number(r?.seq) };
  }

  async listSessionEvents(sessionId: string, afterSeq: number, limit = 1000): Promise<SessionEvent[]> {
    const rows = await this.sql.query<Row>(
      `SELECT * FROM session_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ${clampLimit(limit, 10_000)}`,
      [sessionId, afterSeq],
    );
    return rows.map(toSessionEvent);
  }

  async countSessionsByState(): Promise<Record<string, number>> {
    const rows = await this.sql.query<Row>("SELECT state, COUNT(*) AS n FROM sessions GROUP BY state");
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
  }
}
