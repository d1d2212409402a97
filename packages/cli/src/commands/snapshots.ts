import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

interface SnapshotView {
  id: string;
  name: string | null;
  sandboxId: string;
  sizeBytes: number;
  createdAt: string;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** `berth snapshot create SANDBOX [--name N]`. */
export const snapshotCreate: Command = {
  summary: "snapshot a sandbox's files",
  usage: `Usage: berth snapshot create SANDBOX_ID [--name NAME]

Captures the sandbox's files and prints the snapshot's id. Start a sandbox from it with
the API's \`fromSnapshot\` (POST /v1/sandboxes).`,
  options: { name: { type: "string" } },
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra !== undefined) throw new UsageError("expected one sandbox ID", ctx.usage);
    const name = args.values.name as string | undefined;
    const s = await ctx
      .client()
      .json<SnapshotView>("POST", `/v1/sandboxes/${encodeURIComponent(id)}/snapshots`, {
        json: name ? { name } : {},
      });
    ctx.out(ctx.json ? JSON.stringify(s, null, 2) : s.id);
    return 0;
  },
};

/** `berth snapshot list`. */
export const snapshotList: Command = {
  summary: "list snapshots",
  usage: "Usage: berth snapshot list\n\nLists your snapshots as a table (an array with --json).",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const { items } = await ctx.client().json<{ items: SnapshotView[] }>("GET", "/v1/snapshots");
    if (ctx.json) ctx.out(JSON.stringify(items, null, 2));
    else
      ctx.out(
        formatTable(
          ["ID", "NAME", "SANDBOX", "SIZE", "CREATED"],
          items.map((s) => [s.id, s.name ?? "", s.sandboxId, mib(s.sizeBytes), s.createdAt]),
        ),
      );
    return 0;
  },
};

/** `berth snapshot rm ID...`. */
export const snapshotRemove: Command = {
  summary: "delete snapshots",
  usage: "Usage: berth snapshot rm SNAPSHOT_ID...\n\nDeletes each snapshot.",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one snapshot ID", ctx.usage);
    for (const id of args.positionals) {
      await ctx.client().json("DELETE", `/v1/snapshots/${encodeURIComponent(id)}`);
      if (!ctx.json) ctx.out(id);
    }
    if (ctx.json) ctx.out(JSON.stringify({ deleted: args.positionals }));
    return 0;
  },
};
