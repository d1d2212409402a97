import type { BerthClient, CallOptions } from "./client.js";
import type { TenantInfo } from "./types.js";

/** Tenants and their monthly model budgets (setting one needs an admin key). */
export class Tenants {
  constructor(private readonly client: BerthClient) {}

  /** Every tenant with its budget and this month's spend (admin keys only). */
  async list(o: CallOptions = {}): Promise<TenantInfo[]> {
    return (await this.client.json<{ items: TenantInfo[] }>("GET", "/v1/tenants", { signal: o.signal }))
      .items;
  }

  /** One tenant (an admin key, or a key of that tenant). */
  get(id: string, o: CallOptions = {}): Promise<TenantInfo> {
    return this.client.json("GET", `/v1/tenants/${encodeURIComponent(id)}`, { signal: o.signal });
  }

  /** Caps the tenant's model spend per calendar month (UTC) at `usd`; null removes the cap. */
  setMonthlyBudget(id: string, usd: number | null, o: CallOptions = {}): Promise<TenantInfo> {
    return this.client.json("PATCH", `/v1/tenants/${encodeURIComponent(id)}`, {
      json: { monthlyBudgetUsd: usd },
      signal: o.signal,
    });
  }
}
