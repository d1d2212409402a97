import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

interface UsageRow {
  key: string;
  tokensUsd: number;
  computeUsd: number;
  totalUsd: number;
  inputTokens: number;
  outputTokens: number;
  sandboxSeconds: number;
}

const GROUPS = ["tenant", "session", "sandbox", "day"];

/** `berth usage`. */
export const usage: Command = {
  summary: "agent sessions' cost: tokens and compute, by tenant, session, sandbox or day",
  usage: `Usage: berth usage [--by tenant|session|sandbox|day] [--from TIME] [--to TIME]

Sums agent sessions' token cost and compute cost (USD) per group (default: tenant).
TIME is ISO-8601 (2026-12-01 or 2026-12-01T10:00:00Z). An admin key sees every tenant.`,
  options: { by: { type: "string" }, from: { type: "string" }, to: { type: "string" } },
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const by = (args.values.by as string | undefined) ?? "tenant";
    if (!GROUPS.includes(by))
      throw new UsageError(`--by must be one of ${GROUPS.join(", ")}, not '${by}'`, ctx.usage);
    for (const flag of ["from", "to"] as const) {
      const v = args.values[flag] as string | undefined;
      if (v !== undefined && Number.isNaN(Date.parse(v)))
        throw new UsageError(`--${flag} expects an ISO-8601 time such as 2026-12-01, got '${v}'`, ctx.usage);
    }
    const { items } = await ctx.client().json<{ items: UsageRow[] }>("GET", "/v1/usage", {
      query: {
        groupBy: by,
        from: args.values.from as string | undefined,
        to: args.values.to as string | undefined,
      },
    });
    if (ctx.json) {
      ctx.out(JSON.stringify(items, null, 2));
      return 0;
    }
    const usd = (n: number) => n.toFixed(4);
    ctx.out(
      formatTable(
        [by.toUpperCase(), "TOTAL_USD", "TOKENS_USD", "COMPUTE_USD", "IN_TOKENS", "OUT_TOKENS", "SANDBOX_S"],
        items.map((r) => [
          r.key,
          usd(r.totalUsd),
          usd(r.tokensUsd),
          usd(r.computeUsd),
          String(r.inputTokens),
          String(r.outputTokens),
          r.sandboxSeconds.toFixed(0),
        ]),
      ),
    );
    return 0;
  },
};
