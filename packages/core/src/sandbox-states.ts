import { ConflictError } from "./errors.js";
import type { SandboxState } from "./types.js";

/**
 * What can happen to a sandbox. `pause`, `resume`, `hibernate`, `wake` and `delete` are asked
 * for (by a tenant, the reaper or a session); `started` and `fail` are what the runtime reports;
 * `snapshot` leaves the state as it is but is allowed only where the table says.
 */
export const SANDBOX_ACTIONS = [
  "started",
  "pause",
  "resume",
  "hibernate",
  "wake",
  "delete",
  "fail",
  "snapshot",
] as const;
export type SandboxAction = (typeof SANDBOX_ACTIONS)[number];

/**
 * The sandbox state machine: state x action -> next state. A pair that is missing is not allowed.
 * A pair that leads back to its own state is allowed and does nothing (pausing a paused sandbox
 * answers it as it is), so a retried request never fails on its own first success.
 */
export const SANDBOX_TRANSITIONS: Readonly<
  Record<SandboxState, Readonly<Partial<Record<SandboxAction, SandboxState>>>>
> = {
  starting: { started: "running", delete: "deleted", fail: "failed" },
  running: {
    snapshot: "running",
    pause: "paused",
    resume: "running",
    hibernate: "hibernated",
    wake: "running",
    delete: "deleted",
    fail: "failed",
  },
  paused: {
    snapshot: "paused",
    pause: "paused",
    resume: "running",
    hibernate: "hibernated",
    delete: "deleted",
    fail: "failed",
  },
  hibernated: {
    snapshot: "hibernated",
    hibernate: "hibernated",
    wake: "running",
    delete: "deleted",
    fail: "failed",
  },
  stopped: { delete: "deleted", fail: "failed" },
  failed: { delete: "deleted", fail: "failed" },
  deleted: { delete: "deleted" },
};

/** States in which a sandbox holds runtime resources (processes, or a kept disk and network). */
export const LIVE_SANDBOX_STATES: SandboxState[] = ["starting", "running", "paused", "hibernated"];
/** States that hold memory: they count against the server's `maxSandboxes`. */
export const COUNTED_SANDBOX_STATES: SandboxState[] = ["starting", "running", "paused"];

/** What a client can do to bring a sandbox in `state` to where `action` is allowed. */
const REMEDY: Record<SandboxState, string> = {
  starting: "wait until it is running",
  running: "it is already running",
  paused: "resume it first (POST /v1/sandboxes/{id}/resume)",
  hibernated: "wake it first (POST /v1/sandboxes/{id}/wake), or send any request that uses it",
  stopped: "delete it and create a new one",
  failed: "delete it and create a new one (its failureReason says what happened)",
  deleted: "create a new sandbox",
};

/** Whether `action` is allowed for a sandbox in `state`. */
export function canSandbox(state: SandboxState, action: SandboxAction): boolean {
  return SANDBOX_TRANSITIONS[state][action] !== undefined;
}

/**
 * The state `action` leads to from `state`; a 409 `invalid_state` naming the state and what
 * to do when the table does not allow it.
 */
export function nextSandboxState(id: string, state: SandboxState, action: SandboxAction): SandboxState {
  const to = SANDBOX_TRANSITIONS[state][action];
  if (to !== undefined) return to;
  const allowed = (Object.keys(SANDBOX_TRANSITIONS) as SandboxState[]).filter((s) => canSandbox(s, action));
  throw new ConflictError(
    `sandbox '${id}' is ${state}; '${action}' needs it ${allowed.join(" or ")}: ${REMEDY[state].replace("{id}", id)}`,
    { state, action, allowedFrom: allowed },
    "invalid_state",
  );
}

/** A 409 `invalid_state` for an operation that needs a running sandbox (exec, files, ports). */
export function notRunningError(id: string, state: SandboxState): ConflictError {
  return new ConflictError(
    `sandbox '${id}' is ${state}, not running: ${REMEDY[state].replace("{id}", id)}`,
    { state },
    "invalid_state",
  );
}
