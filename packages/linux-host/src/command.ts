import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { type Logger, SandboxError, TimeoutError } from "@berth/core";

/** Options of one external command. */
export interface CommandOptions {
  log?: Logger;
  signal?: AbortSignal;
  /** Kill the command (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Working directory of the command. */
  cwd?: string;
  /** Bytes written to the command's stdin. */
  input?: string;
  /** Extra stdio entries after stdin/stdout/stderr (fd 3, 4, ...): open fds the child inherits. */
  extraFds?: number[];
  /**
   * Send stdout and stderr to this file instead of pipes (read back for the error). For commands
   * whose children inherit stdio and outlive them (`runc run -d`): a pipe would never close.
   */
  outputFile?: string;
}

/** What a command printed. */
export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Most a command may print before it is cut off (runc state, mkfs output are small). */
const MAX_OUTPUT = 4 * 1024 * 1024;

/**
 * An external command that exited non-zero (or was killed). The message names only the tool,
 * so it is safe to show; `argv` and `stderr` (which hold host paths) are for the logs.
 */
export class CommandError extends SandboxError {
  readonly argv: readonly string[];
  readonly stderr: string;
  readonly exitCode: number | null;

  constructor(argv: readonly string[], exitCode: number | null, stderr: string, why?: string) {
    super(`${argv[0] ?? "command"} failed${why ? `: ${why}` : ` (exit ${exitCode})`}`);
    // Non-enumerable: these never reach a serialised error body.
    Object.defineProperty(this, "argv", { value: argv, enumerable: false });
    Object.defineProperty(this, "stderr", { value: stderr, enumerable: false });
    this.argv = argv;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/**
 * Runs `cmd args...` (no shell), logs the argv at debug and resolves with its output; a non-zero
 * exit rejects with a `CommandError` carrying stderr. Aborting or timing out kills it (SIGKILL).
 */
export function run(cmd: string, args: readonly string[], o: CommandOptions = {}): Promise<CommandResult> {
  const argv = [cmd, ...args];
  o.log?.debug({ argv }, "exec");
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new TimeoutError(`${cmd} aborted`));
      return;
    }
    const outFd = o.outputFile ? openSync(o.outputFile, "w", 0o600) : null;
    const out = outFd ?? "pipe";
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, {
        cwd: o.cwd,
        stdio: [o.input === undefined ? "ignore" : "pipe", out, out, ...(o.extraFds ?? [])],
      });
    } finally {
      if (outFd !== null) closeSync(outFd); // the child holds its own copy
    }
    let stdout = "";
    let stderr = "";
    let why: string | undefined;
    const kill = (reason: string) => {
      why ??= reason;
      child.kill("SIGKILL");
    };
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
    const onAbort = () => kill("aborted");
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = o.timeoutMs
      ? setTimeout(() => kill(`timed out after ${o.timeoutMs} ms`), o.timeoutMs)
      : null;
    const done = () => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
    };
    child.on("error", (err) => {
      done();
      reject(new CommandError(argv, null, String(err.message), "could not start"));
    });
    child.on("close", (code, sig) => {
      done();
      if (o.outputFile) stderr = readOutput(o.outputFile);
      if (why === "aborted") reject(new TimeoutError(`${cmd} aborted`));
      else if (why) reject(new CommandError(argv, code, stderr, why));
      else if (code !== 0) {
        o.log?.debug({ argv, code, signal: sig, stderr: stderr.slice(0, 2000) }, "exec failed");
        reject(new CommandError(argv, code, stderr.trim(), sig ? `killed by ${sig}` : undefined));
      } else resolve({ stdout, stderr });
    });
  });
}

/** Like `run` but never rejects: for best-effort cleanup steps. Returns whether it succeeded. */
export async function tryRun(cmd: string, args: readonly string[], o: CommandOptions = {}): Promise<boolean> {
  try {
    await run(cmd, args, o);
    return true;
  } catch (err) {
    o.log?.debug({ argv: [cmd, ...args], err: String(err) }, "cleanup step failed (ignored)");
    return false;
  }
}

/** A command whose stdout is read as it is written (tar, zstd): for output too big to buffer. */
export interface StreamingCommand {
  readonly stdout: Readable;
  /** Its exit code once it has exited (-1: it could not start) and the start of its stderr. */
  readonly exited: Promise<{ code: number; stderr: string }>;
  /** Kills it (SIGKILL): the reader stopped early. */
  kill(): void;
}

/**
 * The streaming mode of `run`: starts `cmd args...` (no shell) and hands out its stdout as a
 * stream. stderr is kept only with `keepStderr` (it often names host paths).
 */
export function runStreaming(
  cmd: string,
  args: readonly string[],
  o: { log?: Logger; keepStderr?: boolean } = {},
): StreamingCommand {
  o.log?.debug({ argv: [cmd, ...args] }, "exec (streaming)");
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", o.keepStderr ? "pipe" : "ignore"] });
  const stdout = child.stdout as Readable; // piped above
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < MAX_OUTPUT) stderr += d;
  });
  const exited = new Promise<{ code: number; stderr: string }>((resolve) => {
    child.on("error", () => resolve({ code: -1, stderr }));
    // Killed by a signal: no exit code, and not the -1 of a command that never started.
    child.on("close", (code) => resolve({ code: code ?? 128, stderr }));
  });
  return { stdout, exited, kill: () => child.kill("SIGKILL") };
}

/**
 * The stdout of `cmd args...` as chunks, for `for await`. A reader that stops early kills the
 * command; after the last chunk `check` sees the exit code and throws when it means failure.
 */
export async function* commandOutput(
  cmd: string,
  args: readonly string[],
  check: (code: number) => void,
  o: { log?: Logger } = {},
): AsyncGenerator<Buffer> {
  const child = runStreaming(cmd, args, o);
  let complete = false;
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    complete = true;
  } finally {
    if (!complete) child.kill();
  }
  check((await child.exited).code);
}

function readOutput(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(0, MAX_OUTPUT);
  } catch {
    return "";
  }
}
