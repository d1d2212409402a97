import type { SandboxEvent, SandboxEventStore } from "@berth/core";
import type { Sql } from "../db.js";
import { clampLimit, json, parse, type Row } from "../sql.js";

function toEvent(r: Row): SandboxEvent {
  return {
    seq: Number(r.seq),
    sandboxId: String(r.sandbox_id),
    type: String(r.type),
    data: parse(r.data),
    at: String(r.at),
  };
}

/** Sandboxes' event logs (table `sandbox_events`; `seq` is the database's, increasing). */
export class SandboxEventRows implements SandboxEventStore {
  constructor(private readonly sql: Sql) {}

  async appendEvent(e: Omit<SandboxEvent, "seq">): Promise<SandboxEvent> {
    const [r] = await this.sql.query<Row>(
      "INSERT INTO sandbox_events (sandbox_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq",
      [e.sandboxId, e.type, json(e.data), e.at],
    );
    return { ...e, seq: Number(r?.seq) };
  }

  async lastEvent(sandboxId: string): Promise<SandboxEvent | null> {
    const [r] = await this.sql.query<Row>(
      "SELECT * FROM sandbox_events WHERE sandbox_id = ? ORDER BY seq DESC LIMIT 1",
      [sandboxId],
    );
    return r ? toEvent(r) : null;
  }

  async listEvents(sandboxId: string, afterSeq: number, limit = 1000): Promise<SandboxEvent[]> {
    const rows = await this.sql.query<Row>(
      `SELECT * FROM sandbox_events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ${clampLimit(limit, 10_000)}`,
      [sandboxId, afterSeq],
    );
    return rows.map(toEvent);
  }

  /** Forgets a sandbox's events (when the sandbox is purged). */
  async deleteEventsOf(sandboxId: string): Promise<void> {
    await this.sql.query("DELETE FROM sandbox_events WHERE sandbox_id = ?", [sandboxId]);
  }
}
