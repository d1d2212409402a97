import { InvalidRequestError } from "@berth/core";
import { AuditEntry, AuditQuery, PageOf } from "@berth/core/contract";
import { requireAdmin } from "../auth/authenticate.js";
import type { App, ServerContext } from "./context.js";

/** An ISO 8601 time, or a date (`2026-11-24`); normalized so it compares with stored times. */
function timeParam(name: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(t))
    throw new InvalidRequestError(`${name} must be an ISO 8601 time or date, e.g. 2026-11-24T10:00:00Z`, {
      field: name,
    });
  return new Date(t).toISOString();
}

/** The audit trail of mutating calls (admin keys only), oldest first, paged by cursor. */
export function auditRoutes(app: App, ctx: ServerContext): void {
  app.get(
    "/v1/audit",
    {
      schema: {
        tags: ["audit"],
        querystring: AuditQuery,
        response: {
          200: PageOf(AuditEntry),
        },
      },
    },
    async (req) => {
      requireAdmin(req);
      const q = req.query;
      const limit = Number(q.limit ?? 100);
      if (limit < 1 || limit > 1000)
        throw new InvalidRequestError("limit must be 1..1000", { field: "limit" });
      const rows = await ctx.store.listAudit({
        from: timeParam("from", q.from),
        to: timeParam("to", q.to),
        afterId: q.cursor ? Number(q.cursor) : 0,
        limit,
      });
      return {
        items: rows.map((a) => ({
          at: a.at,
          tenant: a.tenantId,
          keyId: a.keyId,
          method: a.method,
          path: a.path,
          status: a.status,
          requestId: a.requestId,
        })),
        nextCursor: rows.length === limit ? String(rows.at(-1)?.id) : null,
      };
    },
  );
}
