import type { SessionEvent, SessionPatch, SessionRecord, SessionState } from "@berth/core";
import type { Db } from "./db.js";
import type { Row } from "./rows.js";

const json = (v: unknown) => JSON.stringify(v);
const parse = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const orNull = (v: unknown) => (v === null || v === undefined ? null : String(v));

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
    agentSessionId: orNull(r.agent_session_id),
    options: parse(r.options),
    turns: Number(r.turns),
    usage: parse(r.usage),
    tokensUsd: Number(r.tokens_usd),
    result: r.result === null || r.result === undefined ? null : parse(r.result),
    failureReason: orNull(r.failure_reason),
    failure: r.failure === null || r.failure === undefined ? null : parse(r.failure),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
    endedAt: orNull(r.ended_at),
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

/** Agent sessions and their event logs on any SQL database behind `Db`. */
export class SessionRows {
  constructor(private readonly db: Db) {}

  async insert(s: SessionRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO sessions (id, tenant_id, sandbox_id, pattern, state, agent_session_id, options, turns, usage,
         tokens_usd, result, failure_reason, failure, created_at, updated_at, ended_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        s.id,
        s.tenantId,
        s.sandboxId,
        s.pattern,
        s.state,
        s.agentSessionId,
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

  async get(id: string): Promise<SessionRecord | null> {
    const [r] = await this.db.query<Row>("SELECT * FROM sessions WHERE id = ?", [id]);
    return r ? toSession(r) : null;
  }

  async update(id: string, patch: SessionPatch): Promise<SessionRecord | null> {
    const sets = ["updated_at = ?"];
    const params: unknown[] = [new Date().toISOString()];
    for (const [key, value] of Object.entries(patch)) {
      const col = COLUMN[key as keyof SessionPatch];
      if (value === undefined || !col) continue;
      sets.push(`${col.name} = ?`);
      params.push(col.json ? (value === null ? null : json(value)) : value);
    }
    const [r] = await this.db.query<Row>(`UPDATE sessions SET ${sets.join(", ")} WHERE id = ? RETURNING *`, [
      ...params,
      id,
    ]);
    return r ? toSession(r) : null;
  }

  async list(q: {
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
    const limit = Math.min(Math.max(q.limit ?? 1000, 1), 10_000);
    const rows = await this.db.query<Row>(
      `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT ${limit}`,
      params,
    );
    return rows.map(toSession);
  }

  async appendEvent(e: Omit<SessionEvent, "seq">): Promise<SessionEvent> {
    const [r] = await this.db.query<Row>(
      "INSERT INTO session_events (session_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq",
      [e.sessionId, e.type, json(e.data), e.at],
    );
    return { ...e, seq: Number(r?.seq) };
  }

  async listEvents(sessionId: string, afterSeq: number, limit = 1000): Promise<SessionEvent[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM session_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ${Math.min(Math.max(limit, 1), 10_000)}`,
      [sessionId, afterSeq],
    );
    return rows.map(toSessionEvent);
  }
}
