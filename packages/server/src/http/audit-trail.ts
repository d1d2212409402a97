import type { Logger, Store } from "@berth/core";
import type { FastifyReply, FastifyRequest } from "fastify";
import { isApiRequest } from "./request-path.js";

/** Methods that change something: every call with one of them is kept in the audit trail. */
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Longest path (with its query) kept per row. */
const MAX_PATH = 2048;

/**
 * Records each mutating call of the v1 API once its answer is sent: who (tenant and key id, or
 * null when the key was refused), what (method and the path as sent), when, and the result
 * (status). Which calls count is decided by the route they reached (see isApiRequest), so
 * `/%761/keys` is recorded like `/v1/keys`. The row
 * is written after the response, so a slow store never delays a client; a failed write is
 * logged, not retried.
 */
export function auditCall(store: Store, log: Logger, req: FastifyRequest, reply: FastifyReply): void {
  if (!MUTATING.has(req.method) || !isApiRequest(req)) return;
  const caller = req.caller as FastifyRequest["caller"] | undefined;
  store
    .appendAudit({
      at: new Date().toISOString(),
      tenantId: caller?.tenantId ?? null,
      keyId: caller?.keyId ?? null,
      method: req.method,
      path: req.url.slice(0, MAX_PATH),
      status: reply.statusCode,
      requestId: String(req.id),
    })
    .catch((err: unknown) => log.error({ err: String(err), reqId: req.id }, "could not write the audit row"));
}
