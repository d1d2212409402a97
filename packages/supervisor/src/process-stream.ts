import { EventEmitter } from "node:events";
import type { BerthError } from "@berth/core";
import { type FrameConnection, invalidAnswer, parseAnswer } from "./connection.js";
import { type ExitStatus, toExitStatus } from "./types.js";

/** Bytes per stdin frame (well below berth-init's 1 MiB frame limit). */
const STDIN_CHUNK = 256 * 1024;

/**
 * A running (`exec`) or logged (`logs`) process. Events: 'stdout'(Buffer), 'stderr'(Buffer),
 * 'exit'(ExitStatus) exactly once, or 'error'(Error) when the connection broke first ('error'
 * is only emitted when someone listens, so a dying sandbox cannot crash the server).
 * Frames that arrive with the reply are held until the next macrotask, so listeners attached
 * right after `await exec(...)` see all output.
 */
export class ProcessStream extends EventEmitter {
  private done = false;

  constructor(
    private readonly conn: FrameConnection,
    /** The process id inside the sandbox. */
    readonly pid: number,
  ) {
    super();
    setImmediate(() =>
      conn.stream({
        frame: (f) => {
          if (this.done) return;
          if (f.type === "1") this.emit("stdout", f.payload);
          else if (f.type === "2") this.emit("stderr", f.payload);
          else if (f.type === "x") {
            let status: ExitStatus;
            try {
              status = toExitStatus(parseAnswer(f));
            } catch (e) {
              return this.fail(e as BerthError);
            }
            this.done = true;
            conn.close();
            this.emit("exit", status);
          } else this.fail(invalidAnswer());
        },
        end: (err) => {
          if (err) this.fail(err);
          else this.done = true;
        },
      }),
    );
  }

  /** Sends stdin bytes (exec with `stdin: true` or a PTY); false when the socket is full. */
  writeStdin(buf: Buffer | string): boolean {
    const b = typeof buf === "string" ? Buffer.from(buf) : buf;
    let ok = true;
    for (let i = 0; i < b.length; i += STDIN_CHUNK) ok = this.conn.send("i", b.subarray(i, i + STDIN_CHUNK));
    return ok;
  }

  /** Resolves when stdin can take more after writeStdin returned false. */
  drained(): Promise<void> {
    return this.conn.drained();
  }

  /** Ends stdin (with a PTY: sends the EOF character). */
  endStdin(): void {
    this.conn.send("e");
  }

  /** Signals the process group (e.g. 15 for SIGTERM). */
  kill(signal: number): void {
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) throw new RangeError("signal must be 1..64");
    this.conn.send("k", { signal });
  }

  /** Resizes the PTY. */
  resize(cols: number, rows: number): void {
    this.conn.send("z", { cols, rows });
  }

  /** Stops reading output (backpressure); resume() continues. */
  pause(): void {
    this.conn.socket.pause();
  }

  /** Continues reading output after pause(). */
  resume(): void {
    this.conn.socket.resume();
  }

  /** Closes the connection: berth-init kills the foreground process group. No 'exit' follows. */
  close(): void {
    this.done = true;
    this.conn.close();
  }

  private fail(err: BerthError): void {
    if (this.done) return;
    this.done = true;
    this.conn.close();
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }
}
