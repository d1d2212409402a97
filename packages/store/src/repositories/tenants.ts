import type { Tenant, TenantStore } from "@berth/core";
import type { Sql } from "../db.js";
import { conflictOnDuplicate, type Row } from "../sql.js";

function toTenant(r: Row): Tenant {
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

/** Tenants (table `tenants`). */
export class TenantRows implements TenantStore {
  constructor(private readonly sql: Sql) {}

  async createTenant(t: Tenant): Promise<void> {
    await this.sql
      .query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", [t.id, t.name, t.createdAt])
      .catch(conflictOnDuplicate(`tenant '${t.id}'`));
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const [r] = await this.sql.query<Row>("SELECT * FROM tenants WHERE id = ?", [id]);
    return r ? toTenant(r) : null;
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.sql.query<Row>("SELECT * FROM tenants ORDER BY id");
    return rows.map(toTenant);
  }

  async setTenantBudget(id: string, monthlyBudgetUsd: number | null): Promise<boolean> {
    const rows = await this.sql.query<Row>(
      "UPDATE tenants SET monthly_budget_usd = ? WHERE id = ? RETURNING id",
      [monthlyBudgetUsd, id],
    );
    return rows.length > 0;
  }
}
