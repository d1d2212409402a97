import type { SandboxRun, UsageStore } from "@berth/core";
import type { Sql } from "../db.js";
import { type Row, str } from "../sql.js";

/** What is metered: tenants' model spend per month (`tenant_spend`), sandboxes' running stretches (`sandbox_runs`). */
export class UsageRows implements UsageStore {
  constructor(private readonly sql: Sql) {}

  async addTenantSpend(id: string, month: string, usd: number): Promise<void> {
    // One upsert: replicas adding at once never lose an addition.
    await this.sql.query(
      `INSERT INTO tenant_spend (tenant_id, month, usd) VALUES (?, ?, ?)
       ON CONFLICT (tenant_id, month) DO UPDATE SET usd = tenant_spend.usd + excluded.usd`,
      [id, month, usd],
    );
  }

  async tenantSpend(id: string, month: string): Promise<number> {
    const [r] = await this.sql.query<Row>("SELECT usd FROM tenant_spend WHERE tenant_id = ? AND month = ?", [
      id,
      month,
    ]);
    return r ? Number(r.usd) : 0;
  }

  async startSandboxRun(sandboxId: string, at: string): Promise<void> {
    // One statement, so two callers cannot both open a stretch.
    await this.sql.query(
      `INSERT INTO sandbox_runs (sandbox_id, started_at, ended_at)
       SELECT ?, ?, NULL WHERE NOT EXISTS (SELECT 1 FROM sandbox_runs WHERE sandbox_id = ? AND ended_at IS NULL)`,
      [sandboxId, at, sandboxId],
    );
  }

  async endSandboxRun(sandboxId: string, at: string): Promise<void> {
    await this.sql.query("UPDATE sandbox_runs SET ended_at = ? WHERE sandbox_id = ? AND ended_at IS NULL", [
      at,
      sandboxId,
    ]);
  }

  async listSandboxRuns(sandboxIds: string[]): Promise<SandboxRun[]> {
    if (sandboxIds.length === 0) return [];
    const rows = await this.sql.query<Row>(
      `SELECT * FROM sandbox_runs WHERE sandbox_id IN (${sandboxIds.map(() => "?").join(", ")}) ORDER BY started_at`,
      sandboxIds,
    );
    return rows.map((r) => ({
      sandboxId: String(r.sandbox_id),
      startedAt: String(r.started_at),
      endedAt: str(r.ended_at),
    }));
  }

  async deleteSandboxRuns(sandboxId: string): Promise<void> {
    await this.sql.query("DELETE FROM sandbox_runs WHERE sandbox_id = ?", [sandboxId]);
  }
}
