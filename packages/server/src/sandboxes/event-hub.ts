import { EventEmitter } from "node:events";
import type { SandboxEvent, Store } from "@berth/core";

/** The channel that carries every sandbox's events (sandbox ids never look like this). */
const EVERY = "*";

/**
 * Lifecycle events: stored first (so a reconnecting client replays them with Last-Event-ID,
 * also after a restart), then pushed to live subscribers of the sandbox.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();

  constructor(private readonly store: Store) {
    // One listener per open SSE stream; many streams are normal.
    this.emitter.setMaxListeners(0);
  }

  async append(sandboxId: string, type: string, data: Record<string, unknown>): Promise<SandboxEvent> {
    const e = await this.store.appendEvent({ sandboxId, type, data, at: new Date().toISOString() });
    this.emitter.emit(sandboxId, e);
    this.emitter.emit(EVERY, e);
    return e;
  }

  /** Calls `fn` for each new event of any sandbox until the returned function is called. */
  subscribeAll(fn: (e: SandboxEvent) => void): () => void {
    this.emitter.on(EVERY, fn);
    return () => this.emitter.off(EVERY, fn);
  }

  /** Calls `fn` for each new event of the sandbox until the returned function is called. */
  subscribe(sandboxId: string, fn: (e: SandboxEvent) => void): () => void {
    this.emitter.on(sandboxId, fn);
    return () => this.emitter.off(sandboxId, fn);
  }
}
