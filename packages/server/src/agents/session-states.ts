import {
  canMoveSession,
  isFinalSessionState,
  KeyedLock,
  type SessionFailure,
  type SessionRecord,
  type SessionState,
  type Store,
} from "@berth/core";
import type { SessionEvents } from "./session-events.js";

/**
 * The one writer of a session's state: every move is checked against core's transition table,
 * made under the session's lock (no two moves interleave) and recorded as a `state` event.
 */
export class SessionStates {
  private readonly lock = new KeyedLock();

  constructor(private readonly d: { store: Store; events: SessionEvents }) {}

  /**
   * Moves the session to `to` (with `note` in its event). A move the table does not allow is not
   * made (a late turn result after a delete, say); returns the record as it is after.
   */
  move(id: string, to: SessionState, note: Record<string, unknown> = {}): Promise<SessionRecord | null> {
    return this.lock.run(id, async () => {
      const cur = await this.d.store.getSession(id);
      if (!cur || cur.state === to || !canMoveSession(cur.state, to)) return cur;
      const next = await this.d.store.updateSession(id, { state: to });
      await this.d.events.append(id, "state", { state: to, from: cur.state, ...note });
      return next;
    });
  }

  /** Ends the session for good (no-op when it already ended); `failure` says why (null: it completed). */
  end(id: string, state: SessionState, failure: SessionFailure | null): Promise<void> {
    return this.lock.run(id, async () => {
      const cur = await this.d.store.getSession(id);
      if (!cur || isFinalSessionState(cur.state) || !canMoveSession(cur.state, state)) return;
      await this.d.store.updateSession(id, {
        state,
        endedAt: new Date().toISOString(),
        ...(failure ? { failure, failureReason: failure.message } : {}),
      });
      await this.d.events.append(id, "state", {
        state,
        from: cur.state,
        ...(failure ? { reason: failure.message, failure } : {}),
      });
    });
  }

  /** Records why the last turn failed (null: it succeeded) without moving the session. */
  async noteFailure(id: string, failure: SessionFailure | null): Promise<void> {
    await this.d.store.updateSession(id, { failure, failureReason: failure?.message ?? null });
  }
}
