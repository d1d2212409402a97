import { InvalidRequestError, type SessionRecord } from "@berth/core";
import { type USAGE_GROUPS, UsageList, UsageQuery, type UsageRow } from "@berth/core/contract";
import { computeOf, type SandboxCompute, sessionShare } from "../billing/compute.js";
import type { App, ServerContext } from "./context.js";

type Group = (typeof USAGE_GROUPS)[number];

function timeOf(v: string | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidRequestError(`${field} must be an ISO-8601 time`, { field });
  return t;
}

/** Sums usage into rows by key. */
class UsageRows {
  private readonly rows = new Map<string, UsageRow>();

  add(key: string, part: Partial<Omit<UsageRow, "key" | "totalUsd">>): void {
    const row = this.rows.get(key) ?? {
      key,
      tokensUsd: 0,
      computeUsd: 0,
      totalUsd: 0,
      inputTokens: 0,
      outputTokens: 0,
      sandboxSeconds: 0,
    };
    row.tokensUsd += part.tokensUsd ?? 0;
    row.computeUsd += part.computeUsd ?? 0;
    row.totalUsd = row.tokensUsd + row.computeUsd;
    row.inputTokens += part.inputTokens ?? 0;
    row.outputTokens += part.outputTokens ?? 0;
    row.sandboxSeconds += part.sandboxSeconds ?? 0;
    this.rows.set(key, row);
  }

  list(): UsageRow[] {
    return [...this.rows.values()].sort((a, b) => a.key.localeCompare(b.key));
  }
}

function sessionKey(s: SessionRecord, groupBy: Group): string {
  if (groupBy === "tenant") return s.tenantId;
  if (groupBy === "session") return s.id;
  if (groupBy === "sandbox") return s.sandboxId;
  return s.createdAt.slice(0, 10);
}

/** The key of a sandbox's own compute (time none of its sessions was live): the sandbox's id by session. */
function sandboxKey(c: SandboxCompute, groupBy: Group): string {
  if (groupBy === "tenant") return c.tenantId ?? "";
  if (groupBy === "day") return (c.createdAt ?? "").slice(0, 10);
  return c.sandboxId;
}

/**
 * `GET /v1/usage`: agent sessions' tokens and compute, summed by tenant, session, sandbox or day,
 * and the compute of Managed Agents work items' sandboxes.
 * A tenant key sees its own tenant; an admin key sees every tenant. Compute is the running time
 * of each session's sandbox, split between the sessions live at each moment (see billing/compute);
 * running time when none of a sandbox's sessions was live is the sandbox's own and counted under
 * its id (by session or sandbox), its tenant or its creation day.
 */
export function usageRoutes(app: App, ctx: ServerContext): void {
  app.get(
    "/v1/usage",
    { schema: { tags: ["sessions"], querystring: UsageQuery, response: { 200: UsageList } } },
    async (req) => {
      const from = timeOf(req.query.from, "from") ?? 0;
      const to = timeOf(req.query.to, "to") ?? Number.POSITIVE_INFINITY;
      const inRange = (at: string | null) => at !== null && Date.parse(at) >= from && Date.parse(at) < to;
      const groupBy = req.query.groupBy ?? "tenant";
      const sessions = await ctx.store.listSessions({
        ...(req.caller.admin ? {} : { tenantId: req.caller.tenantId }),
        limit: 10_000,
      });
      // Managed Agents work items run in sandboxes of their own, with no Berth session: their compute counts too.
      const managed = await ctx.store.managedAgents.listItemSandboxes(
        req.caller.admin ? undefined : req.caller.tenantId,
      );
      const compute = await computeOf(
        ctx.store,
        [...sessions.map((s) => s.sandboxId), ...managed],
        ctx.config,
      );
      const rows = new UsageRows();
      for (const s of sessions) {
        if (!inRange(s.createdAt)) continue;
        const share = sessionShare(compute.get(s.sandboxId), s.id);
        rows.add(sessionKey(s, groupBy), {
          tokensUsd: s.tokensUsd,
          computeUsd: share.usd,
          inputTokens: s.usage.inputTokens + s.usage.cacheReadTokens + s.usage.cacheCreationTokens,
          outputTokens: s.usage.outputTokens,
          sandboxSeconds: share.seconds,
        });
      }
      for (const c of compute.values()) {
        // Another tenant's sandbox a session of this tenant cannot be in; checked all the same.
        if (c.unsharedSeconds <= 0 || !inRange(c.createdAt)) continue;
        if (!req.caller.admin && c.tenantId !== req.caller.tenantId) continue;
        rows.add(sandboxKey(c, groupBy), {
          computeUsd: (c.unsharedSeconds / 3600) * c.hourlyUsd,
          sandboxSeconds: c.unsharedSeconds,
        });
      }
      return { items: rows.list() };
    },
  );
}
