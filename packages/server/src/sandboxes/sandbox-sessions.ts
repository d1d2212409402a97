import { FINAL_SESSION_STATES, SESSION_STATES, type Store } from "@berth/core";

/** Called when a sandbox that live sessions used was deleted anyway (`?force=true`). */
export type SandboxLostHandler = (sandboxId: string, sessionIds: string[]) => Promise<void>;

const LIVE_SESSION_STATES = SESSION_STATES.filter((s) => !FINAL_SESSION_STATES.includes(s));

/**
 * The agent sessions that live in a sandbox, as the sandbox side needs them: a delete that would
 * pull the sandbox from under them is refused unless forced, and a forced one tells the session
 * side (`onLost`) so that it ends them with `sandbox_lost`.
 */
export class SandboxSessions {
  private readonly handlers = new Set<SandboxLostHandler>();

  constructor(private readonly store: Store) {}

  /** Ids of the sessions not yet ended that run in the sandbox. */
  async liveOn(sandboxId: string): Promise<string[]> {
    const live = await this.store.listSessions({ sandboxId, states: LIVE_SESSION_STATES });
    return live.map((s) => s.id);
  }

  /** Registers what to do with sessions whose sandbox was deleted; returns its removal. */
  onLost(fn: SandboxLostHandler): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  /** Tells every handler that the sandbox is gone under these sessions (errors are theirs to log). */
  async lost(sandboxId: string, sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await Promise.allSettled([...this.handlers].map((fn) => fn(sandboxId, sessionIds)));
  }
}
