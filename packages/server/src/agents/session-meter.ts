import type { SessionUsage, Store } from "@berth/core";

/**
 * The one owner of a session's spend: the gateway reports each answer's tokens and cost here,
 * and only this writes them to the session's row, one write after another per session.
 * (The gateway keeps a running account for its budget cut-off, seeded from this row.)
 */
export class SessionMeter {
  private readonly writes = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  /** Adds one answer's usage and cost to the session (queued behind its earlier writes). */
  add(id: string, u: SessionUsage, cost: number): void {
    const next = (this.writes.get(id) ?? Promise.resolve())
      .then(() => this.write(id, u, cost))
      .catch(() => {});
    this.writes.set(id, next);
    void next.then(() => {
      if (this.writes.get(id) === next) this.writes.delete(id);
    });
  }

  /** Settles once every usage reported so far for the session is written. */
  async settled(id: string): Promise<void> {
    await this.writes.get(id);
  }

  private async write(id: string, u: SessionUsage, cost: number): Promise<void> {
    const cur = await this.store.getSession(id);
    if (!cur) return;
    await this.store.updateSession(id, {
      usage: {
        inputTokens: cur.usage.inputTokens + u.inputTokens,
        outputTokens: cur.usage.outputTokens + u.outputTokens,
        cacheReadTokens: cur.usage.cacheReadTokens + u.cacheReadTokens,
        cacheCreationTokens: cur.usage.cacheCreationTokens + u.cacheCreationTokens,
      },
      tokensUsd: cur.tokensUsd + cost,
    });
  }
}
