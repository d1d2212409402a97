import { describe, expect, it } from "vitest";
import { type BerthError, ConflictError } from "./errors.js";
import {
  COUNTED_SANDBOX_STATES,
  canSandbox,
  LIVE_SANDBOX_STATES,
  nextSandboxState,
  notRunningError,
  SANDBOX_ACTIONS,
  SANDBOX_TRANSITIONS,
  type SandboxAction,
} from "./sandbox-states.js";
import { SANDBOX_STATES, type SandboxState } from "./types.js";

/** Every (state, action) pair and where the table sends it (undefined: refused). */
const pairs = SANDBOX_STATES.flatMap((state) =>
  SANDBOX_ACTIONS.map((action) => ({ state, action, to: SANDBOX_TRANSITIONS[state][action] })),
);

/** The refusal `nextSandboxState` throws for a pair, or undefined when it allows it. */
function refusal(state: SandboxState, action: SandboxAction): BerthError | undefined {
  try {
    nextSandboxState("sb_x", state, action);
    return undefined;
  } catch (err) {
    return err as BerthError;
  }
}

describe("sandbox state machine", () => {
  it("has a row for every state and only known actions and states in it", () => {
    expect(Object.keys(SANDBOX_TRANSITIONS).sort()).toEqual([...SANDBOX_STATES].sort());
    for (const state of SANDBOX_STATES)
      for (const [action, to] of Object.entries(SANDBOX_TRANSITIONS[state])) {
        expect(SANDBOX_ACTIONS).toContain(action);
        expect(SANDBOX_STATES).toContain(to);
      }
  });

  it("moves through the lifecycle a tenant sees", () => {
    const walk = (from: SandboxState, ...actions: SandboxAction[]) =>
      actions.reduce((s, a) => nextSandboxState("sb_x", s, a), from);
    expect(walk("starting", "started")).toBe("running");
    expect(walk("running", "pause", "resume")).toBe("running");
    expect(walk("running", "pause", "hibernate", "wake")).toBe("running");
    expect(walk("running", "hibernate", "delete")).toBe("deleted");
    expect(walk("starting", "fail", "delete")).toBe("deleted");
  });

  it("answers a repeated request with the state it is already in (retries never fail)", () => {
    expect(nextSandboxState("sb_x", "paused", "pause")).toBe("paused");
    expect(nextSandboxState("sb_x", "running", "resume")).toBe("running");
    expect(nextSandboxState("sb_x", "running", "wake")).toBe("running");
    expect(nextSandboxState("sb_x", "hibernated", "hibernate")).toBe("hibernated");
    expect(nextSandboxState("sb_x", "deleted", "delete")).toBe("deleted");
  });

  it("lets nothing out of deleted, and only delete (or fail again) out of failed and stopped", () => {
    expect(pairs.filter((p) => p.state === "deleted" && p.to !== undefined)).toEqual([
      { state: "deleted", action: "delete", to: "deleted" },
    ]);
    for (const state of ["failed", "stopped"] as const)
      for (const p of pairs.filter((x) => x.state === state && x.to !== undefined))
        expect(["deleted", "failed"]).toContain(p.to);
    // A sandbox that never ran cannot be paused, hibernated or woken.
    for (const action of ["pause", "hibernate", "wake", "resume"] as const)
      expect(canSandbox("starting", action)).toBe(false);
  });

  it("refuses every pair the table lacks with a 409 invalid_state naming the state and what to do", () => {
    const refused = pairs.filter((p) => p.to === undefined);
    expect(refused.length).toBeGreaterThan(10);
    for (const { state, action } of refused) {
      const err = refusal(state, action);
      expect(err, `${state} x ${action}`).toBeInstanceOf(ConflictError);
      expect(err?.status).toBe(409);
      expect(err?.code).toBe("invalid_state");
      expect(err?.details).toMatchObject({ state, action });
      expect(err?.message).toContain(`is ${state}`);
    }
    expect(refusal("hibernated", "pause")?.message).toMatch(
      /wake it first \(POST \/v1\/sandboxes\/sb_x\/wake\)/,
    );
    expect(refusal("paused", "wake")?.details?.allowedFrom).toEqual(["running", "hibernated"]);
    // A snapshot keeps the state, and is taken only of a sandbox that has one to take.
    expect(refusal("starting", "snapshot")?.details?.allowedFrom).toEqual([
      "running",
      "paused",
      "hibernated",
    ]);
    expect(nextSandboxState("sb_x", "hibernated", "snapshot")).toBe("hibernated");
    for (const p of pairs.filter((x) => x.to !== undefined))
      expect(refusal(p.state, p.action)).toBeUndefined();
  });

  it("tells a request that needs a running sandbox what to do", () => {
    const err = notRunningError("sb_x", "failed");
    expect(err.code).toBe("invalid_state");
    expect(err.status).toBe(409);
    expect(err.message).toMatch(/is failed, not running: delete it/);
  });

  it("counts only states that hold memory, and only live states count", () => {
    expect(COUNTED_SANDBOX_STATES.every((s) => LIVE_SANDBOX_STATES.includes(s))).toBe(true);
    expect(COUNTED_SANDBOX_STATES).not.toContain("hibernated");
    expect(LIVE_SANDBOX_STATES).not.toContain("deleted");
  });
});
