import { constants } from "node:os";
import { Sandbox } from "@berth/sdk";
import { parseKeyValues, UsageError } from "../args.js";
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

/** `berth processes start [--stdin] [--cwd DIR] [--env K=V]... ID -- CMD...`. */
export const processesStart: Command = {
  summary: "start a background process (prints its pid)",
  usage: `Usage: berth processes start ID [--stdin] [--cwd DIR] [--env K=V]... -- CMD [ARGS...]

Starts CMD in the background and prints its pid. It outlives this command; read its output with
\`berth processes logs\`.

Options:
  --stdin        keep its stdin open for \`berth processes stdin\` (else it reads /dev/null)
  --cwd DIR      working directory inside the sandbox
  --env K=V      environment variable (repeatable)`,
  options: { stdin: { type: "boolean" }, cwd: { type: "string" }, env: { type: "string", multiple: true } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError("expected exactly one sandbox ID", ctx.usage);
    const cmd = args.rest ?? [];
    if (cmd.length === 0) throw new UsageError("missing command after '--'", ctx.usage);
    const sb = await Sandbox.connect(args.positionals[0] as string, { client: ctx.client() });
    const info = await sb.processes.start({
      cmd,
      cwd: args.values.cwd as string | undefined,
      env: args.values.env ? parseKeyValues(args.values.env, "env", ctx.usage) : undefined,
      stdin: args.values.stdin === true,
    });
    ctx.out(ctx.json ? JSON.stringify(info, null, 2) : String(info.pid));
    return 0;
  },
};

/** Bytes per write when piping this command's stdin through (the API's limit per write). */
const STDIN_CHUNK = 1024 * 1024;

/** This process's stdin in pieces of at most STDIN_CHUNK bytes. */
async function* stdinChunks(): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    pending.push(c);
    size += c.length;
    while (size >= STDIN_CHUNK) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, STDIN_CHUNK);
      pending = [all.subarray(STDIN_CHUNK)];
      size = all.length - STDIN_CHUNK;
    }
  }
  if (size > 0) yield Buffer.concat(pending);
}

/** `berth processes stdin [--data TEXT] [--close] ID PID`. */
export const processesStdin: Command = {
  summary: "write to (or close) the stdin of a background process started with --stdin",
  usage: `Usage: berth processes stdin [--data TEXT] [--close] ID PID

Writes TEXT, or else everything piped into this command, to the process's stdin; with --close
closes its stdin afterwards (the process reads end of file). \`--close\` alone on a terminal just
closes it. The process must have been started with stdin kept (\`berth processes start --stdin\`).

Options:
  --data TEXT    write TEXT instead of reading this command's stdin
  --close        close the process's stdin after writing`,
  options: { data: { type: "string" }, close: { type: "boolean" } },
  async run(args, ctx) {
    const { id, pid } = sandboxAndPid(args, ctx);
    const close = args.values.close === true;
    const data = args.values.data as string | undefined;
    const fromStdin = data === undefined && !(process.stdin.isTTY && close);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    let written = 0;
    let closed = false;
    if (!fromStdin) {
      const r = await sb.processes.writeStdin(pid, data ?? "", { close });
      written = r.written;
      closed = r.closed;
    } else {
      for await (const chunk of stdinChunks()) written += (await sb.processes.writeStdin(pid, chunk)).written;
      if (close) closed = (await sb.processes.closeStdin(pid)).closed;
    }
    if (ctx.json) ctx.out(JSON.stringify({ pid, written, closed }));
    return 0;
  },
};
