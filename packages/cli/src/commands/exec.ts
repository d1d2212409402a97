import { Sandbox } from "@berth/sdk";
import { parseDuration, parseKeyValues, parseNumber, UsageError } from "../args.js";
import type { Command } from "../command.js";

const toMs = (seconds: number | undefined) =>
  seconds === undefined ? undefined : Math.round(seconds * 1000);

/** Exit status when the command was killed for running too long (as coreutils `timeout`). */
const TIMED_OUT_EXIT = 124;

/** `berth sandbox exec`. */
export const sandboxExec: Command = {
  summary: "run a command in a sandbox",
  usage: `Usage: berth sandbox exec ID [--cwd DIR] [--env K=V]... [--timeout D] [--root] -- CMD [ARGS...]

Runs CMD in the sandbox, streams its stdout and stderr live, and exits with its exit code
(124 when it timed out). With --json, waits and prints the whole result instead.

Options:
  --cwd DIR      working directory inside the sandbox
  --env K=V      environment variable (repeatable)
  --timeout D    kill the command after D (500ms, 30s, 5m; a bare number is milliseconds)
  --root         run as root (only in a sandbox created with --root)`,
  options: {
    root: { type: "boolean" },
    cwd: { type: "string" },
    env: { type: "string", multiple: true },
    timeout: { type: "string" },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError("expected exactly one sandbox ID", ctx.usage);
    const cmd = args.rest ?? [];
    if (cmd.length === 0) throw new UsageError("missing command after '--'", ctx.usage);
    const sb = await Sandbox.connect(args.positionals[0] as string, { client: ctx.client() });
    const opts = {
      cwd: args.values.cwd as string | undefined,
      env: args.values.env ? parseKeyValues(args.values.env, "env", ctx.usage) : undefined,
      ...(args.values.root ? { user: "root" as const } : {}),
      timeoutMs: /^\d+$/.test(String(args.values.timeout ?? ""))
        ? parseNumber(args.values.timeout, "timeout", ctx.usage, { integer: true })
        : toMs(parseDuration(args.values.timeout, "timeout", ctx.usage)),
    };
    if (ctx.json) {
      const result = await sb.exec(cmd, opts);
      ctx.out(JSON.stringify(result, null, 2));
      return exitStatus(result.exitCode, result.timedOut);
    }
    const result = await sb.exec(cmd, {
      ...opts,
      onStdout: (text) => process.stdout.write(text),
      onStderr: (text) => process.stderr.write(text),
    });
    if (result.timedOut) ctx.err("berth: command timed out");
    return exitStatus(result.exitCode, result.timedOut);
  },
};

/** A process exit status for the sandboxed command's code. */
function exitStatus(code: number, timedOut: boolean): number {
  if (timedOut) return TIMED_OUT_EXIT;
  if (!Number.isInteger(code) || code < 0) return 1;
  return Math.min(code, 255);
}
