import type { USAGE_GROUPS, UsageRow as UsageRowSchema } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/** One row of `GET /v1/usage`: tokens and compute summed under `key`. */
export type UsageRow = Static<typeof UsageRowSchema>;

/** How usage rows are keyed. */
export type UsageGroup = (typeof USAGE_GROUPS)[number];

/** Options of `usage.get`: a grouping and a time range of session creation (ISO-8601 or Date). */
export interface UsageOptions extends CallOptions {
  groupBy?: UsageGroup;
  from?: string | Date;
  to?: string | Date;
}

const iso = (t: string | Date | undefined) => (t instanceof Date ? t.toISOString() : t);

/** Agent sessions' tokens and compute (a tenant key sees its tenant; an admin key every tenant). */
export class Usage {
  constructor(private readonly client: BerthClient) {}

  /** Usage rows grouped by tenant (the default), session, sandbox or day. */
  async get(o: UsageOptions = {}): Promise<UsageRow[]> {
    return (
      await this.client.json<{ items: UsageRow[] }>("GET", "/v1/usage", {
        query: { groupBy: o.groupBy, from: iso(o.from), to: iso(o.to) },
        signal: o.signal,
      })
    ).items;
  }
}
