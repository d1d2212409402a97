import { Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command, Context } from "../command.js";
import { parseCopyTarget } from "../remote-path.js";
import { formatTable } from "../table.js";

/** `ID:/path` as a sandbox and an absolute path; anything else is a usage error. */
function sandboxPath(arg: string | undefined, ctx: Context): { sandboxId: string; path: string } {
  if (!arg) throw new UsageError("expected ID:/PATH", ctx.usage);
  let t: ReturnType<typeof parseCopyTarget>;
  try {
    t = parseCopyTarget(arg);
  } catch (err) {
    throw new UsageError((err as Error).message, ctx.usage);
  }
  if (t.kind !== "remote")
    throw new UsageError(`expected ID:/PATH (a path in a sandbox), got '${arg}'`, ctx.usage);
  return t;
}

function onePath(args: { positionals: string[] }, ctx: Context) {
  if (args.positionals.length !== 1) throw new UsageError("expected one ID:/PATH", ctx.usage);
  return sandboxPath(args.positionals[0], ctx);
}

const files = async (ctx: Context, sandboxId: string) =>
  (await Sandbox.connect(sandboxId, { client: ctx.client() })).files;

/** `berth files ls ID:/PATH`. */
export const filesList: Command = {
  summary: "list a directory in a sandbox",
  usage: "Usage: berth files ls ID:/PATH\n\nLists the directory's entries: type, size, modified time, name.",
  options: {},
  async run(args, ctx) {
    const { sandboxId, path } = onePath(args, ctx);
    const entries = await (await files(ctx, sandboxId)).list(path);
    if (ctx.json) ctx.out(JSON.stringify(entries, null, 2));
    else
      ctx.out(
        formatTable(
          ["TYPE", "SIZE", "MODIFIED", "NAME"],
          entries.map((e) => [e.type, String(e.size), e.mtime, e.name]),
        ),
      );
    return 0;
  },
};

/** `berth files rm [-r] ID:/PATH`. */
export const filesRemove: Command = {
  summary: "delete a file or directory in a sandbox",
  usage:
    "Usage: berth files rm [-r] ID:/PATH\n\nDeletes a file; with -r (--recursive), a directory and everything in it.",
  options: { recursive: { type: "boolean", short: "r" } },
  async run(args, ctx) {
    const { sandboxId, path } = onePath(args, ctx);
    await (await files(ctx, sandboxId)).remove(path, { recursive: args.values.recursive === true });
    return 0;
  },
};

/** `berth files mkdir ID:/PATH`. */
export const filesMkdir: Command = {
  summary: "create a directory (and its parents) in a sandbox",
  usage: "Usage: berth files mkdir ID:/PATH\n\nCreates the directory and any missing parents.",
  options: {},
  async run(args, ctx) {
    const { sandboxId, path } = onePath(args, ctx);
    await (await files(ctx, sandboxId)).mkdir(path);
    return 0;
  },
};

/** `berth files watch ID:/PATH`. */
export const filesWatch: Command = {
  summary: "print changes under a path in a sandbox as they happen",
  usage: `Usage: berth files watch [--no-recursive] ID:/PATH

Prints one line per change under PATH ("create /workspace/a.txt", "modify ...", "delete ...";
a JSON line each with --json) until interrupted (Ctrl-C).`,
  options: { "no-recursive": { type: "boolean" } },
  async run(args, ctx) {
    const { sandboxId, path } = onePath(args, ctx);
    const stop = new AbortController();
    process.once("SIGINT", () => stop.abort());
    try {
      for await (const ev of ctx
        .client()
        .stream("GET", `/v1/sandboxes/${encodeURIComponent(sandboxId)}/files/watch`, {
          query: { path, recursive: args.values["no-recursive"] ? "false" : undefined },
          signal: stop.signal,
        })) {
        if (ev.event === "error") {
          ctx.err(`berth: watch: ${ev.data}`);
          return 1;
        }
        const change = JSON.parse(ev.data) as { type: string; path: string };
        ctx.out(ctx.json ? JSON.stringify(change) : `${change.type} ${change.path}`);
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    }
    return 0;
  },
};
