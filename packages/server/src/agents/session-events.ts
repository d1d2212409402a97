import { EventEmitter } from "node:events";
import type { SessionEvent, Store } from "@berth/core";

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

  /** Calls `fn` for each new event of the session until the returned function is called. */
  subscribe(sessionId: string, fn: (e: SessionEvent) => void): () => void {
    this.emitter.on(sessionId, fn);
    return () => this.emitter.off(sessionId, fn);
  }
}
