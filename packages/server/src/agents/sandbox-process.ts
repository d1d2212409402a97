import { EventEmitter } from "node:events";
import { constants } from "node:os";
import { PassThrough, Writable } from "node:stream";
import type { Logger } from "@berth/core";
import type { ProcessStream, SupervisorClient } from "@berth/supervisor";

/** How much of the process's stderr is kept for the log when it fails. */
const STDERR_TAIL = 8 * 1024;

/**
 * The `claude` process as the Agent SDK sees it (its `SpawnedProcess`), running inside a sandbox
 * through the sandbox's supervisor with piped stdin/stdout. It is started at once; writes to
 * stdin wait until it runs.
 */
export class SandboxProcess extends EventEmitter {
  readonly stdin: Writable;
  readonly stdout = new PassThrough();
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  killed = false;
  private stderrTail = "";
  private readonly proc: Promise<ProcessStream>;

  constructor(
    client: SupervisorClient,
    o: { cmd: string[]; cwd: string; env: Record<string, string>; writable?: string[]; log: Logger },
  ) {
    super();
    this.proc = client.exec({
      cmd: o.cmd,
      cwd: o.cwd,
      env: o.env,
      stdin: true,
      ...(o.writable ? { writable: o.writable } : {}),
    });
    this.proc.then(
      (p) => {
        p.on("stdout", (b: Buffer) => this.stdout.write(b));
        p.on("stderr", (b: Buffer) => {
          this.stderrTail = (this.stderrTail + b.toString("utf8")).slice(-STDERR_TAIL);
        });
        p.on("exit", (s: { exitCode: number | null; signal: string | null }) => {
          this.exitCode = s.exitCode;
          this.signalCode = s.signal as NodeJS.Signals | null;
          if (s.exitCode !== 0) o.log.info({ exit: s, stderr: this.stderrTail }, "agent process ended");
          this.stdout.end();
          this.emit("exit", s.exitCode, this.signalCode);
        });
        p.on("error", (err: Error) => this.fail(err));
      },
      (err: Error) => this.fail(err),
    );
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.proc.then((p) => {
          if (p.writeStdin(chunk)) cb();
          else p.drained().then(() => cb(), cb);
        }, cb);
      },
      final: (cb) => {
        this.proc.then((p) => {
          p.endStdin();
          cb();
        }, cb);
      },
    });
    // The SDK may write after the process died; that is not the server's error.
    this.stdin.on("error", () => {});
  }

  /** The last few KiB of the process's stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  kill(signal: NodeJS.Signals): boolean {
    this.killed = true;
    const n = (constants.signals as Record<string, number>)[signal] ?? 15;
    this.proc.then((p) => p.kill(n)).catch(() => {});
    return true;
  }

  private fail(err: Error): void {
    if (this.exitCode !== null) return;
    this.exitCode = 1;
    this.stdout.end();
    if (this.listenerCount("error") > 0) this.emit("error", err);
    this.emit("exit", 1, null);
  }
}
