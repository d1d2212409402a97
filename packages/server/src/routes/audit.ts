import { InvalidRequestError } from "@berth/core";
import { Type as T } from "@sinclair/typebox";
import { requireAdmin } from "../auth/authenticate.js";
import type { App, ServerContext } from "./context.js";

const AuditEntry = T.Object({
  at: T.String(),
  tenant: T.Union([T.String(), T.Null()]),
  keyId: T.Union([T.String(), T.Null()]),
  method: T.String(),
  path: T.String(),
  status: T.Integer(),
  requestId: T.String(),
});

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
        querystring: T.Object(
          {
            from: T.Optional(T.String({ maxLength: 40, description: "Inclusive start (ISO 8601)" })),
            to: T.Optional(T.String({ maxLength: 40, description: "Exclusive end (ISO 8601)" })),
            limit: T.Optional(
              T.String({ pattern: "^[0-9]{1,4}$", description: "Rows per page, 1-1000 (100)" }),
            ),
            cursor: T.Optional(
              T.String({ pattern: "^[0-9]{1,15}$", description: "nextCursor of the last page" }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: T.Object({ items: T.Array(AuditEntry), nextCursor: T.Union([T.String(), T.Null()]) }),
        },
      },
    },
    async (req) => {
      requireAdmin(req);
      const q = req.query as { from?: string; to?: string; limit?: string; cursor?: string };
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
