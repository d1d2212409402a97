import type { AuditEntry as AuditEntrySchema } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/** One mutating call the server recorded: who, what, when, and how it was answered. */
export type AuditEntry = Static<typeof AuditEntrySchema>;

/** Options of `audit.list`: a time range (ISO-8601 or Date) and a page size. */
export interface AuditOptions extends CallOptions {
  from?: string | Date;
  to?: string | Date;
  /** Rows per request while paging (1-1000; the server's default 100). */
  pageSize?: number;
}

const iso = (t: string | Date | undefined) => (t instanceof Date ? t.toISOString() : t);

/** The audit trail of mutating calls (admin keys only). */
export class Audit {
  constructor(private readonly client: BerthClient) {}

  /** The entries in the range, oldest first, following pagination to the end. */
  async list(o: AuditOptions = {}): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.client.json<{ items: AuditEntry[]; nextCursor?: string | null }>(
        "GET",
        "/v1/audit",
        {
          query: { from: iso(o.from), to: iso(o.to), limit: o.pageSize, cursor },
          signal: o.signal,
        },
      );
      out.push(...page.items);
      if (!page.nextCursor || page.nextCursor === cursor) return out;
      cursor = page.nextCursor;
    }
  }
}
