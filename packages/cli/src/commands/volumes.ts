import { parseNumber, UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

interface VolumeView {
  name: string;
  sizeMiB: number;
  usedBytes: number | null;
  createdAt: string;
}

/** `berth volume create NAME [--size MiB]`. */
export const volumeCreate: Command = {
  summary: "create a persistent volume",
  usage: `Usage: berth volume create NAME [--size MiB]

Creates a volume (default 1024 MiB, at least 16) that outlives sandboxes; mount it with the
API's \`volumes\` field when creating a sandbox.`,
  options: { size: { type: "string" } },
  async run(args, ctx) {
    const [name, extra] = args.positionals;
    if (!name || extra !== undefined) throw new UsageError("expected one volume NAME", ctx.usage);
    const sizeMiB = parseNumber(args.values.size, "size", ctx.usage, { integer: true });
    const v = await ctx.client().json<VolumeView>("POST", "/v1/volumes", { json: { name, sizeMiB } });
    ctx.out(ctx.json ? JSON.stringify(v, null, 2) : `${v.name}\t${v.sizeMiB} MiB`);
    return 0;
  },
};

/** `berth volume list`. */
export const volumeList: Command = {
  summary: "list volumes",
  usage: "Usage: berth volume list\n\nLists your volumes as a table (an array with --json).",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const { items } = await ctx.client().json<{ items: VolumeView[] }>("GET", "/v1/volumes");
    if (ctx.json) ctx.out(JSON.stringify(items, null, 2));
    else
      ctx.out(
        formatTable(
          ["NAME", "SIZE", "USED", "CREATED"],
          items.map((v) => [
            v.name,
            `${v.sizeMiB} MiB`,
            v.usedBytes === null ? "" : `${(v.usedBytes / 1024 / 1024).toFixed(1)} MiB`,
            v.createdAt,
          ]),
        ),
      );
    return 0;
  },
};

/** `berth volume rm NAME...`. */
export const volumeRemove: Command = {
  summary: "delete volumes",
  usage: "Usage: berth volume rm NAME...\n\nDeletes each volume (one mounted by a sandbox is refused).",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one volume NAME", ctx.usage);
    for (const name of args.positionals) {
      await ctx.client().json("DELETE", `/v1/volumes/${encodeURIComponent(name)}`);
      if (!ctx.json) ctx.out(name);
    }
    if (ctx.json) ctx.out(JSON.stringify({ deleted: args.positionals }));
    return 0;
  },
};
