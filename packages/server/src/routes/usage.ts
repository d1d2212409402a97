import { InvalidRequestError, type SessionRecord } from "@berth/core";
import { Type as T } from "@sinclair/typebox";
import type { App, ServerContext } from "./context.js";

/** One row of `GET /v1/usage`. */
export interface UsageRow {
  key: string;
  tokensUsd: number;
  computeUsd: number;
  totalUsd: number;
  inputTokens: number;
  outputTokens: number;
  sandboxSeconds: number;
}

const GROUPS = ["tenant", "session", "sandbox", "day"] as const;
const UsageQuery = T.Object({
  from: T.Optional(T.String({ maxLength: 64 })),
  to: T.Optional(T.String({ maxLength: 64 })),
  groupBy: T.Optional(T.Union(GROUPS.map((g) => T.Literal(g)))),
});

/** A session's compute: its sandbox's CPUs and memory for the session's wall-clock time, prorated. */
export function sessionCompute(
  s: SessionRecord,
  resources: { cpus: number; memoryMiB: number } | undefined,
  prices: { cpuHourUsd: number; memoryGiBHourUsd: number },
): { seconds: number; usd: number } {
  const seconds = Math.max(
    0,
    ((s.endedAt ? Date.parse(s.endedAt) : Date.now()) - Date.parse(s.createdAt)) / 1000,
  );
  if (!resources) return { seconds, usd: 0 };
  const perHour = resources.cpus * prices.cpuHourUsd + (resources.memoryMiB / 1024) * prices.memoryGiBHourUsd;
  return { seconds, usd: (seconds / 3600) * perHour };
}

function timeOf(v: string | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidRequestError(`${field} must be an ISO-8601 time`, { field });
  return t;
}

/** `GET /v1/usage`: the caller's agent sessions' tokens and compute, summed by tenant, session, sandbox or day. */
export function usageRoutes(app: App, ctx: ServerContext): void {
  app.get("/v1/usage", { schema: { tags: ["sessions"], querystring: UsageQuery } }, async (req) => {
    const from = timeOf(req.query.from, "from") ?? 0;
    const to = timeOf(req.query.to, "to") ?? Number.POSITIVE_INFINITY;
    const groupBy = req.query.groupBy ?? "tenant";
    const sessions = (await ctx.store.listSessions({ tenantId: req.caller.tenantId, limit: 10_000 })).filter(
      (s) => Date.parse(s.createdAt) >= from && Date.parse(s.createdAt) < to,
    );
    const rows = new Map<string, UsageRow>();
    for (const s of sessions) {
      const sandbox = await ctx.store.getSandbox(s.sandboxId);
      const compute = sessionCompute(s, sandbox?.resources, ctx.config);
      const key =
        groupBy === "tenant"
          ? s.tenantId
          : groupBy === "session"
            ? s.id
            : groupBy === "sandbox"
              ? s.sandboxId
              : s.createdAt.slice(0, 10);
      const row = rows.get(key) ?? {
        key,
        tokensUsd: 0,
        computeUsd: 0,
        totalUsd: 0,
        inputTokens: 0,
        outputTokens: 0,
        sandboxSeconds: 0,
      };
      row.tokensUsd += s.tokensUsd;
      row.computeUsd += compute.usd;
      row.totalUsd = row.tokensUsd + row.computeUsd;
      row.inputTokens += s.usage.inputTokens + s.usage.cacheReadTokens + s.usage.cacheCreationTokens;
      row.outputTokens += s.usage.outputTokens;
      row.sandboxSeconds += compute.seconds;
      rows.set(key, row);
    }
    return { items: [...rows.values()].sort((a, b) => a.key.localeCompare(b.key)) };
  });
}
