import { describe, expect, it } from "vitest";
import { ConflictError } from "./errors.js";
import {
  assertSessionMove,
  canMoveSession,
  isFinalSessionState,
  SESSION_TRANSITIONS,
  TurnLine,
} from "./session-machine.js";
import { FINAL_SESSION_STATES, SESSION_STATES } from "./sessions.js";

describe("session state machine", () => {
  it("has a row for every state, names only known states, and final states lead nowhere", () => {
    expect(Object.keys(SESSION_TRANSITIONS).sort()).toEqual([...SESSION_STATES].sort());
    for (const [from, tos] of Object.entries(SESSION_TRANSITIONS)) {
      for (const to of tos) expect(SESSION_STATES).toContain(to);
      expect(tos).not.toContain(from);
    }
    for (const s of FINAL_SESSION_STATES) {
      expect(SESSION_TRANSITIONS[s]).toEqual([]);
      expect(isFinalSessionState(s)).toBe(true);
    }
  });

  it("every live state can end in each final state", () => {
    for (const s of SESSION_STATES.filter((s) => !isFinalSessionState(s)))
      for (const f of FINAL_SESSION_STATES) expect(canMoveSession(s, f), `${s} -> ${f}`).toBe(true);
  });

  it("a hibernated session leaves only by running (a message woke it) or by ending", () => {
    const out = SESSION_TRANSITIONS.hibernated.filter((s) => !isFinalSessionState(s));
    expect(out).toEqual(["running"]);
    expect(canMoveSession("hibernated", "idle")).toBe(false);
  });

  it("a refused move is a 409 conflict naming both states", () => {
    expect(() => assertSessionMove("ses_x", "completed", "running")).toThrow(ConflictError);
    try {
      assertSessionMove("ses_x", "completed", "running");
    } catch (e) {
      expect((e as ConflictError).details).toEqual({ state: "completed", to: "running" });
    }
    expect(() => assertSessionMove("ses_x", "idle", "running")).not.toThrow();
  });
});

describe("TurnLine", () => {
  it("answers messages one turn at a time, in the order they came, and is busy while any waits", () => {
    const line = new TurnLine();
    expect(line.busy).toBe(false);
    expect(line.offer("one")).toBe("one");
    expect(line.offer("two")).toBeUndefined();
    expect(line.offer("three")).toBeUndefined();
    expect(line.busy).toBe(true);
    expect(line.queued).toBe(2);
    expect(line.ended()).toBe("two");
    expect(line.busy).toBe(true);
    expect(line.ended()).toBe("three");
    expect(line.busy).toBe(true);
    expect(line.ended()).toBeUndefined();
    expect(line.busy).toBe(false);
    expect(line.offer("four")).toBe("four");
  });

  it("a turn the agent starts on its own makes it busy, and a message then waits for it", () => {
    const line = new TurnLine();
    line.began();
    expect(line.busy).toBe(true);
    expect(line.offer("after")).toBeUndefined();
    expect(line.ended()).toBe("after");
    expect(line.ended()).toBeUndefined();
    expect(line.busy).toBe(false);
  });

  it("drain hands back what waits and leaves the line empty", () => {
    const line = new TurnLine();
    line.offer("a");
    line.offer("b");
    line.offer("c");
    expect(line.drain()).toEqual(["b", "c"]);
    expect(line.busy).toBe(false);
    expect(line.offer("d")).toBe("d");
  });
});
