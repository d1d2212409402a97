import { ConflictError } from "./errors.js";
import { FINAL_SESSION_STATES, type SessionState } from "./sessions.js";

/**
 * Every state change a session may make, and why it makes it. One table, read by the session
 * service (and anything else that moves a session), so no call site keeps its own `from[]` list.
 *
 * - `running`: a turn is being processed or a message waits for one;
 * - `idle`: nothing runs and nothing waits;
 * - `hibernated`: no agent process (a hybrid session's quiet time, or its sandbox was hibernated
 *   under it); the next message starts one that resumes the conversation.
 */
export const SESSION_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  // idle: a restart lost the first turn; the session waits for a message.
  starting: ["running", "idle", "completed", "failed", "cancelled"],
  // hibernated: its sandbox was hibernated under a turn (the turn is lost, the conversation kept).
  running: ["idle", "hibernated", "completed", "failed", "cancelled"],
  idle: ["running", "hibernated", "completed", "failed", "cancelled"],
  // Only a message (or an end) takes a session out of hibernation.
  hibernated: ["running", "completed", "failed", "cancelled"],
  completed: [],
  failed: [],
  cancelled: [],
};

/** Whether a session in `from` may move to `to` (staying where it is is not a move). */
export function canMoveSession(from: SessionState, to: SessionState): boolean {
  return SESSION_TRANSITIONS[from].includes(to);
}

/** Throws 409 `conflict` naming both states when a session may not move from `from` to `to`. */
export function assertSessionMove(id: string, from: SessionState, to: SessionState): void {
  if (!canMoveSession(from, to))
    throw new ConflictError(`session '${id}' is ${from} and cannot become ${to}`, { state: from, to });
}

/** Whether a session in this state is over (it takes no message and runs nothing). */
export function isFinalSessionState(s: SessionState): boolean {
  return FINAL_SESSION_STATES.includes(s);
}

/** States in which a session's agent process may be alive in some server. */
export const LIVE_SESSION_STATES: readonly SessionState[] = ["starting", "running", "idle"];

/**
 * The user messages of one live conversation: one turn at a time, in the order they came.
 * A message that arrives while a turn runs waits here (the session stays `running`) and is
 * handed to the agent when that turn's result arrives, so every message gets its own answer.
 * Pure bookkeeping: the caller sends what it is handed.
 */
export class TurnLine<T = string> {
  private readonly waiting: T[] = [];
  private inTurn = false;

  /** A turn is under way or a message waits: the session is `running`. */
  get busy(): boolean {
    return this.inTurn || this.waiting.length > 0;
  }

  /** How many messages wait behind the current turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /** A new message: returned when it can go to the agent now, else kept for later (undefined). */
  offer(message: T): T | undefined {
    if (this.inTurn) {
      this.waiting.push(message);
      return undefined;
    }
    this.inTurn = true;
    return message;
  }

  /** The agent started a turn of its own (a background task's notification): it counts as one. */
  began(): void {
    this.inTurn = true;
  }

  /** The current turn's result arrived: the next waiting message, if any, is returned to send. */
  ended(): T | undefined {
    const next = this.waiting.shift();
    this.inTurn = next !== undefined;
    return next;
  }

  /** The messages that wait (not the one under way), taken out; the line is empty after. */
  drain(): T[] {
    this.inTurn = false;
    return this.waiting.splice(0);
  }
}
