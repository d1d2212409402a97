import { Keys } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

/** `berth keys create`. */
export const keysCreate: Command = {
  summary: "create an API key",
  usage: `Usage: berth keys create --tenant T [--admin]

Creates an API key for tenant T (needs an admin key) and prints it. The key is shown only
once: store it now.`,
  options: { tenant: { type: "string" }, admin: { type: "boolean" } },
  async run(args, ctx) {
    const tenant = args.values.tenant as string | undefined;
    if (!tenant) throw new UsageError("--tenant is required", ctx.usage);
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const key = await new Keys(ctx.client()).create(tenant, { admin: args.values.admin === true });
    ctx.out(ctx.json ? JSON.stringify(key, null, 2) : (key.key ?? ""));
    if (!ctx.json)
      ctx.err(`key ${key.id} for tenant '${key.tenant}'${key.admin ? " (admin)" : ""}: shown only once`);
    return 0;
  },
};

/** `berth keys list`. */
export const keysList: Command = {
  summary: "list API keys",
  usage: "Usage: berth keys list\n\nLists API keys (without their secrets).",
  options: {},
  async run(_args, ctx) {
    const keys = await new Keys(ctx.client()).list();
    if (ctx.json) ctx.out(JSON.stringify(keys, null, 2));
    else
      ctx.out(
        formatTable(
          ["ID", "TENANT", "ADMIN", "CREATED"],
          keys.map((k) => [k.id, k.tenant, k.admin ? "yes" : "no", k.createdAt]),
        ),
      );
    return 0;
  },
};

/** `berth keys rm`. */
export const keysRemove: Command = {
  summary: "revoke API keys",
  usage: "Usage: berth keys rm ID...\n\nRevokes each key.",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one key ID", ctx.usage);
    const keys = new Keys(ctx.client());
    for (const id of args.positionals) await keys.revoke(id);
    return 0;
  },
};
