import { SandboxError } from "@berth/core";
import type WebSocket from "ws";
import type { BerthClient } from "./client.js";

/** Options of `sb.pty()`. */
export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** Terminal output, as raw bytes (may split UTF-8 sequences). */
  onData?: (bytes: Uint8Array) => void;
  /** Aborts opening the terminal (once open, `close()` ends it). */
  signal?: AbortSignal;
}

/** An interactive terminal in a sandbox over a WebSocket. */
export class Pty {
  private exitCode: number | undefined;
  private closedByUs = false;
  private readonly done: Promise<number>;

  private constructor(
    private readonly ws: WebSocket,
    onData: ((bytes: Uint8Array) => void) | undefined,
  ) {
    this.done = new Promise<number>((resolve, reject) => {
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (isBinary) {
          onData?.(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
          return;
        }
        try {
          const msg = JSON.parse(data.toString("utf8")) as { exit?: { exitCode?: number } };
          if (msg.exit) this.exitCode = msg.exit.exitCode ?? -1;
        } catch {
          // A text frame that is not ours: ignore rather than kill the session.
        }
      });
      ws.on("close", (code: number, reason: Buffer) => {
        if (this.exitCode !== undefined) resolve(this.exitCode);
        else if (this.closedByUs) resolve(-1);
        else
          reject(new SandboxError(`terminal closed without an exit status (${code} ${reason.toString()})`));
      });
      ws.on("error", () => {
        // `close` follows and settles the promise.
      });
    });
    // wait() may never be called; an unhandled rejection must not crash the caller.
    this.done.catch(() => {});
  }

  /** Opens a terminal running the sandbox's login shell. */
  static async open(client: BerthClient, sandboxId: string, opts: PtyOptions = {}): Promise<Pty> {
    const ws = await client.websocket(
      `/v1/sandboxes/${encodeURIComponent(sandboxId)}/pty`,
      { cols: opts.cols ?? 80, rows: opts.rows ?? 24 },
      opts.signal,
    );
    return new Pty(ws, opts.onData);
  }

  /** Sends keystrokes or pasted text. */
  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    this.ws.send(bytes, { binary: true });
  }

  /** Tells the terminal its new size. */
  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ resize: { cols, rows } }), { binary: false });
  }

  /** Resolves with the shell's exit code when it ends (-1 when closed by `close()`). */
  wait(): Promise<number> {
    return this.done;
  }

  /** Ends the session from this side. */
  close(): void {
    this.closedByUs = true;
    this.ws.close(1000);
  }
}
