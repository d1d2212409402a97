import { EventEmitter } from "node:events";
import type { BerthError } from "@berth/core";
import { type FrameConnection, invalidAnswer, parseAnswer } from "./connection.js";

/** One file system change under a watched path. */
export interface WatchEvent {
  type: "create" | "modify" | "delete";
  path: string;
}

const TYPES = new Set(["create", "modify", "delete"]);

/**
 * File system events under a path: 'event'(WatchEvent) until close(); 'error'(Error) when the
 * connection breaks (only emitted when someone listens), then 'close'.
 */
export class WatchStream extends EventEmitter {
  private done = false;

  constructor(private readonly conn: FrameConnection) {
    super();
    setImmediate(() =>
      conn.stream({
        frame: (f) => {
          if (this.done) return;
          try {
            if (f.type !== "w") throw invalidAnswer();
            const a = parseAnswer(f);
            if (typeof a.type !== "string" || !TYPES.has(a.type) || typeof a.path !== "string")
              throw invalidAnswer();
            this.emit("event", { type: a.type, path: a.path } as WatchEvent);
          } catch (e) {
            this.end(e as BerthError);
          }
        },
        end: (err) => this.end(err),
      }),
    );
  }

  /** Stops watching. */
  close(): void {
    this.end(undefined);
  }

  private end(err: BerthError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.conn.close();
    if (err && this.listenerCount("error") > 0) this.emit("error", err);
    this.emit("close");
  }
}
