import { constants } from "node:os";
import { Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command, Context } from "../command.js";
import { formatTable } from "../table.js";

function sandboxAndPid(args: { positionals: string[] }, ctx: Context): { id: string; pid: number } {
  const [id, pidText, extra] = args.positionals;
  if (!id || !pidText || extra !== undefined) throw new UsageError("expected ID and PID", ctx.usage);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0)
    throw new UsageError(`PID must be a positive integer, got '${pidText}'`, ctx.usage);
  return { id, pid };
}

/** `berth processes ls ID`. */
export const processesList: Command = {
  summary: "list a sandbox's background processes",
  usage:
    "Usage: berth processes ls ID\n\nLists the processes started through the API: pid, state, exit code, command.",
  options: {},
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra !== undefined) throw new UsageError("expected one sandbox ID", ctx.usage);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    const items = await sb.processes.list();
    if (ctx.json) ctx.out(JSON.stringify(items, null, 2));
    else
      ctx.out(
        formatTable(
          ["PID", "STATE", "EXIT", "COMMAND"],
          items.map((p) => [
            String(p.pid),
            p.state,
            p.exitCode === null ? "" : String(p.exitCode),
            p.cmd.join(" "),
          ]),
        ),
      );
    return 0;
  },
};

/** `berth processes logs [-f] ID PID`. */
export const processesLogs: Command = {
  summary: "print a background process's output",
  usage: `Usage: berth processes logs [-f] ID PID

Prints the process's output so far (stdout to stdout, stderr to stderr); with -f (--follow),
keeps printing until the process exits, then exits with its exit code.`,
  options: { follow: { type: "boolean", short: "f" } },
  async run(args, ctx) {
    const { id, pid } = sandboxAndPid(args, ctx);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    const logs = await sb.processes.logs(pid, {
      follow: args.values.follow === true,
      onStdout: ctx.json ? undefined : (t) => process.stdout.write(t),
      onStderr: ctx.json ? undefined : (t) => process.stderr.write(t),
    });
    if (ctx.json) ctx.out(JSON.stringify(logs, null, 2));
    return args.values.follow === true && typeof logs.exitCode === "number" ? logs.exitCode : 0;
  },
};

/** `berth processes kill [--signal S] ID PID`. */
export const processesKill: Command = {
  summary: "send a signal to a background process (default SIGTERM)",
  usage:
    "Usage: berth processes kill [--signal SIGNAL] ID PID\n\nSends SIGNAL (a name: SIGTERM, SIGKILL, SIGINT, ...; default SIGTERM).",
  options: { signal: { type: "string", short: "s" } },
  async run(args, ctx) {
    const { id, pid } = sandboxAndPid(args, ctx);
    const raw = ((args.values.signal as string | undefined) ?? "SIGTERM").toUpperCase();
    const signal = raw.startsWith("SIG") ? raw : `SIG${raw}`;
    if (!(signal in constants.signals))
      throw new UsageError(
        `--signal must be a signal name such as SIGTERM or SIGKILL, got '${raw}'`,
        ctx.usage,
      );
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    await sb.processes.signal(pid, signal);
    if (ctx.json) ctx.out(JSON.stringify({ pid, signal }));
    return 0;
  },
};
