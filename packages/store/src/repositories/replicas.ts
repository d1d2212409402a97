import type { ReplicaRecord, ReplicaStore } from "@berth/core";
import type { Sql } from "../db.js";
import { type Row, str } from "../sql.js";

/** The tables whose rows name the replica holding them (column `replica`). */
const HELD = { sandboxes: "sandboxes", snapshots: "snapshots", volumes: "volumes" } as const;

/** The replicas sharing the store (`replicas`), and the `replica` column of what they hold. */
export class ReplicaRows implements ReplicaStore {
  constructor(private readonly sql: Sql) {}

  async claimUnowned(replica: string): Promise<void> {
    // All three or none: a replica that stops half-way must not leave some tables unclaimed.
    await this.sql.transaction(async (tx) => {
      for (const table of Object.values(HELD))
        await tx.query(`UPDATE ${table} SET replica = ? WHERE replica IS NULL`, [replica]);
    });
  }

  async upsertReplica(r: ReplicaRecord): Promise<void> {
    await this.sql.query(
      "INSERT INTO replicas (id, url, seen_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at",
      [r.id, r.url, r.seenAt],
    );
  }

  async getReplica(id: string): Promise<ReplicaRecord | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM replicas WHERE id = ?", [id]);
    return r ? { id: String(r.id), url: String(r.url), seenAt: String(r.seen_at) } : null;
  }

  async countReplicas(): Promise<number> {
    const [r] = await this.sql.query<Row>("SELECT COUNT(*) AS n FROM replicas");
    return Number(r?.n ?? 0);
  }

  async replicaOf(kind: "snapshots" | "volumes", id: string): Promise<string | null> {
    const [r] = await this.sql.query<Row>(`SELECT replica FROM ${HELD[kind]} WHERE id = ?`, [id]);
    return str(r?.replica);
  }

  async setReplicaOf(kind: "snapshots" | "volumes", id: string, replica: string): Promise<void> {
    await this.sql.query(`UPDATE ${HELD[kind]} SET replica = ? WHERE id = ?`, [replica, id]);
  }
}
