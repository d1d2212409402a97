import { constants } from "node:os";
import { InvalidRequestError } from "@berth/core";
import {
  type ExitStatus,
  launchFailureOf,
  type ProcessStream,
  type SupervisorClient,
} from "@berth/supervisor";

/** Exit code reported when `timeoutMs` ran out (as coreutils `timeout` does). */
export const TIMEOUT_EXIT_CODE = 124;
/** After a timeout's SIGKILL, how long to wait for the exit status before giving up on it. */
const KILL_GRACE_MS = 2_000;

export interface ExecRequest {
  cmd: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
}

export interface ExecSink {
  /** Output as it comes; return false to stop reading until `drained` resolves. */
  output(stream: "stdout" | "stderr", bytes: Buffer): boolean;
  drained?(): Promise<void>;
}

export interface ExecOutcome {
  exitCode: number;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
}

/** Shell convention: killed by signal N is 128 + N. */
export function exitCodeOf(s: ExitStatus): number {
  if (s.exitCode !== null) return s.exitCode;
  const n = s.signal ? (constants.signals as Record<string, number>)[s.signal] : undefined;
  return n ? 128 + n : -1;
}

/** A started command: its stream and when it started, or why the program could not be run. */
export interface StartedExec {
  proc: ProcessStream | null;
  started: number;
  /** Set when the program could not be executed: answered the way a shell would. */
  failed?: { exitCode: number; stderr: string };
}

/**
 * Starts a command (stdin written and closed). A program that does not exist or may not be
 * executed is not an API error: like a shell, it ends with 127 or 126 and says why on stderr.
 * A missing `cwd` is a 400.
 */
export async function startExec(client: SupervisorClient, req: ExecRequest): Promise<StartedExec> {
  const started = performance.now();
  let proc: ProcessStream;
  try {
    proc = await client.exec({ cmd: req.cmd, cwd: req.cwd, env: req.env, stdin: req.stdin !== undefined });
  } catch (err) {
    const launch = launchFailureOf(err);
    switch (launch?.phase) {
      case "chdir":
        throw new InvalidRequestError(`cwd '${req.cwd}' cannot be used: ${launch.reason}`, { field: "cwd" });
      case "exec": {
        const notFound = launch.errno === "ENOENT";
        const why = notFound ? "command not found" : launch.reason;
        return {
          proc: null,
          started,
          failed: { exitCode: notFound ? 127 : 126, stderr: `${req.cmd[0]}: ${why}\n` },
        };
      }
      default:
        throw err;
    }
  }
  if (req.stdin !== undefined) {
    if (req.stdin.length > 0) proc.writeStdin(req.stdin);
    proc.endStdin();
  }
  return { proc, started };
}

/** Runs one command to its end; see `followExec`. */
export async function runExec(
  client: SupervisorClient,
  req: ExecRequest,
  sink: ExecSink,
  signal?: AbortSignal,
): Promise<ExecOutcome> {
  return followExec(await startExec(client, req), req, sink, signal);
}

/**
 * Streams a started command's output to `sink` until it exits. Ends the process when the
 * timeout passes or `signal` aborts (the client went away): nothing keeps running unobserved.
 */
export function followExec(
  { proc, started, failed }: StartedExec,
  req: ExecRequest,
  sink: ExecSink,
  signal?: AbortSignal,
): Promise<ExecOutcome> {
  if (!proc) {
    sink.output("stderr", Buffer.from(failed?.stderr ?? ""));
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    return Promise.resolve({ exitCode: failed?.exitCode ?? 127, signal: null, timedOut: false, durationMs });
  }
  return new Promise<ExecOutcome>((resolve, reject) => {
    let timedOut = false;
    let grace: NodeJS.Timeout | undefined;
    const finish = (s: ExitStatus) => {
      cleanup();
      resolve({
        exitCode: timedOut ? TIMEOUT_EXIT_CODE : exitCodeOf(s),
        signal: s.signal,
        timedOut,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      });
    };
    const timer =
      req.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            safeKill(proc);
            grace = setTimeout(() => {
              proc.close();
              finish({ exitCode: null, signal: "SIGKILL" });
            }, KILL_GRACE_MS);
          }, req.timeoutMs)
        : undefined;
    const onAbort = () => {
      cleanup();
      proc.close();
      reject(new Error("aborted"));
    };
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(grace);
      signal?.removeEventListener("abort", onAbort);
    };
    signal?.addEventListener("abort", onAbort);
    const pipe = (name: "stdout" | "stderr") => (bytes: Buffer) => {
      if (!sink.output(name, bytes) && sink.drained) {
        proc.pause();
        void sink.drained().then(() => proc.resume());
      }
    };
    proc.on("stdout", pipe("stdout"));
    proc.on("stderr", pipe("stderr"));
    proc.on("exit", finish);
    proc.on("error", (err: Error) => {
      cleanup();
      reject(err);
    });
  });
}

function safeKill(p: ProcessStream): void {
  try {
    p.kill(9);
  } catch {
    // The connection is gone; the supervisor kills the process group itself.
  }
}

/** Collects one stream's output up to `limit` bytes. */
export class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  add(b: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (b.length > 0) this.truncated = true;
      return;
    }
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.truncated = true;
    this.chunks.push(part);
    this.size += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}
