import { EventEmitter } from "node:events";
import type { SandboxEvent, SessionEvent, Store } from "@berth/core";

/** The channel that carries every key's events (sandbox and session ids never look like this). */
const EVERY = "*";
/** The channel that says the server is closing (no id looks like this either). */
const SHUTDOWN = "#shutdown";

/**
 * An append-only event log per key (a sandbox or a session): each event is stored first, so a
 * reconnecting client replays it with Last-Event-ID (also after a restart), then pushed to the
 * live subscribers of its key and of every key.
 */
export class EventLog<E, T extends string = string> {
  private readonly emitter = new EventEmitter();

  constructor(
    private readonly write: (key: string, type: T, data: Record<string, unknown>, at: string) => Promise<E>,
  ) {
    // One listener per open SSE stream; many streams are normal.
    this.emitter.setMaxListeners(0);
  }

  /** Stores an event of `key`, then hands it to the live subscribers. */
  async append(key: string, type: T, data: Record<string, unknown>): Promise<E> {
    const e = await this.write(key, type, data, new Date().toISOString());
    this.emitter.emit(key, e);
    this.emitter.emit(EVERY, e);
    return e;
  }

  /** Calls `fn` for each new event of `key` until the returned function is called. */
  subscribe(key: string, fn: (e: E) => void): () => void {
    this.emitter.on(key, fn);
    return () => this.emitter.off(key, fn);
  }

  /**
   * The server is closing: every open stream of events ends (its clients reconnect with
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

  /** Calls `fn` for each new event of any key until the returned function is called. */
  subscribeAll(fn: (e: E) => void): () => void {
    this.emitter.on(EVERY, fn);
    return () => this.emitter.off(EVERY, fn);
  }
}

/** Sandbox lifecycle events (state changes, idle actions, OOM kills, snapshots). */
export class EventHub extends EventLog<SandboxEvent> {
  constructor(store: Store) {
    super((sandboxId, type, data, at) => store.appendEvent({ sandboxId, type, data, at }));
  }
}

/** A session's events (messages, turns, state changes). */
export class SessionEvents extends EventLog<SessionEvent, SessionEvent["type"]> {
  constructor(store: Store) {
    super((sessionId, type, data, at) => store.appendSessionEvent({ sessionId, type, data, at }));
  }
}
