import { EventEmitter } from "node:events";
import type { SessionEvent, Store } from "@berth/core";

/** The emitter's name for the server closing (session ids start with `ses_`, so none collides). */
const SHUTDOWN = "shutdown";

/** A session's events: stored first (replayable, also after a restart), then pushed live. */
export class SessionEvents {
  private readonly emitter = new EventEmitter();

  constructor(private readonly store: Store) {
    this.emitter.setMaxListeners(0);
  }

  async append(
    sessionId: string,
    type: SessionEvent["type"],
    data: Record<string, unknown>,
  ): Promise<SessionEvent> {
    const e = await this.store.appendSessionEvent({ sessionId, type, data, at: new Date().toISOString() });
    this.emitter.emit(sessionId, e);
    return e;
  }

  /**
   * The server is closing: every open stream of session events ends (its clients reconnect with
   * `Last-Event-ID` to the next server), so the HTTP server's close does not wait on them.
   */
  shutdown(): void {
    this.emitter.emit(SHUTDOWN);
  }

  /** Calls `fn` once when the server closes, until the returned function is called. */
  onShutdown(fn: () => void): () => void {
    this.emitter.once(SHUTDOWN, fn);
    return () => this.emitter.off(SHUTDOWN, fn);
  }

  /** Calls `fn` for each new event of the session until the returned function is called. */
  subscribe(sessionId: string, fn: (e: SessionEvent) => void): () => void {
    this.emitter.on(sessionId, fn);
    return () => this.emitter.off(sessionId, fn);
  }
}
