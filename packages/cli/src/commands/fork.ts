import { Sandbox } from "@berth/sdk";
import { parseDuration, parseKeyValues, parseNumber, UsageError } from "../args.js";
import type { Command } from "../command.js";

/** `berth sandbox fork ID [--count N]`. */
export const sandboxFork: Command = {
  summary: "copy a sandbox's files, env and settings into new sandboxes",
  usage: `Usage: berth sandbox fork SANDBOX_ID [--count N] [--label K=V]... [--timeout D]

Makes copies of the sandbox's files, env, resources and settings (not its memory: processes
running in it are not in the copies) and prints their ids, one a line (the sandboxes with
--json). All copies are made or none. On the local driver a copy shares the source's disk
blocks until either side writes, so forking does not grow with what the source changed.

Options:
  --count N      how many copies (1 to 20; default 1)
  --label K=V    the copies' labels instead of the source's (repeatable)
  --timeout D    the copies' lifetime (30s, 10m, 2h; bare numbers are seconds)`,
  options: {
    count: { type: "string" },
    label: { type: "string", multiple: true },
    timeout: { type: "string" },
  },
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra !== undefined || args.rest) throw new UsageError("expected one sandbox ID", ctx.usage);
    const v = args.values;
    const count = parseNumber(v.count, "count", ctx.usage, { integer: true });
    if (count !== undefined && count > 20)
      throw new UsageError(`--count is at most 20, got ${count}`, ctx.usage);
    const source = await Sandbox.connect(id, { client: ctx.client() });
    const copies = await source.fork({
      count,
      labels: v.label ? parseKeyValues(v.label, "label", ctx.usage) : undefined,
      timeoutSeconds: parseDuration(v.timeout, "timeout", ctx.usage, { integer: true }),
    });
    ctx.out(
      ctx.json
        ? JSON.stringify(
            copies.map((c) => c.info),
            null,
            2,
          )
        : copies.map((c) => c.id).join("\n"),
    );
    return 0;
  },
};
