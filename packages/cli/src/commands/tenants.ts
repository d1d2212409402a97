import { type TenantInfo, Tenants } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

const usd = (v: number | null) => (v === null ? "-" : v.toFixed(4));

function table(items: TenantInfo[]): string {
  return formatTable(
    ["TENANT", "MONTH", "SPENT USD", "BUDGET USD"],
    items.map((t) => [t.id, t.month, usd(t.spentUsd), usd(t.monthlyBudgetUsd)]),
  );
}

/** `berth tenants list`. */
export const tenantsList: Command = {
  summary: "list tenants with their model spend and budget",
  usage:
    "Usage: berth tenants list\n\nLists every tenant (needs an admin key) with this month's model spend and budget.",
  options: {},
  async run(_args, ctx) {
    const items = await new Tenants(ctx.client()).list();
    ctx.out(ctx.json ? JSON.stringify(items, null, 2) : table(items));
    return 0;
  },
};

/** `berth tenants show`. */
export const tenantsShow: Command = {
  summary: "show a tenant's model spend and budget",
  usage:
    "Usage: berth tenants show TENANT\n\nShows this month's model spend and the monthly budget of TENANT.",
  options: {},
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra) throw new UsageError("expected one TENANT", ctx.usage);
    const t = await new Tenants(ctx.client()).get(id);
    ctx.out(ctx.json ? JSON.stringify(t, null, 2) : table([t]));
    return 0;
  },
};

/** `berth tenants budget`. */
export const tenantsBudget: Command = {
  summary: "set a tenant's monthly model budget",
  usage: `Usage: berth tenants budget TENANT (--monthly USD | --none)

Caps what TENANT's agent sessions may spend on model tokens per calendar month (UTC), or
removes the cap. Needs an admin key. Once spent, new sessions and model requests are refused
with 402 budget_exceeded.`,
  options: { monthly: { type: "string" }, none: { type: "boolean" } },
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra) throw new UsageError("expected one TENANT", ctx.usage);
    const monthly = args.values.monthly as string | undefined;
    if ((monthly === undefined) === (args.values.none !== true))
      throw new UsageError("give exactly one of --monthly USD or --none", ctx.usage);
    const value = monthly === undefined ? null : Number(monthly);
    if (value !== null && !(Number.isFinite(value) && value >= 0))
      throw new UsageError(`--monthly must be a number of USD (0 or more), got '${monthly}'`, ctx.usage);
    const t = await new Tenants(ctx.client()).setMonthlyBudget(id, value);
    ctx.out(ctx.json ? JSON.stringify(t, null, 2) : table([t]));
    return 0;
  },
};
