import {
  COUNTED_SANDBOX_STATES,
  type Config,
  LimitExceededError,
  type SandboxState,
  SETTINGS,
} from "@berth/core";
import type { ServerMetrics } from "../metrics.js";

/** How many sandboxes on this server hold memory, checked against `maxSandboxes`. */
export class SandboxCapacity {
  private live = 0;

  constructor(private readonly d: { config: Config; metrics: ServerMetrics }) {}

  /** Sets the count (after recovery). */
  set(n: number): void {
    this.live = n;
    this.d.metrics.liveSandboxes = n;
  }

  /** Changes the count by `delta` (a sandbox made or ended). */
  add(delta: number): void {
    this.set(this.live + delta);
  }

  /** Follows a sandbox from one state to another (paused to hibernated frees its memory). */
  moved(from: SandboxState, to: SandboxState): void {
    const was = COUNTED_SANDBOX_STATES.includes(from);
    const is = COUNTED_SANDBOX_STATES.includes(to);
    if (was !== is) this.add(is ? 1 : -1);
  }

  /** A 429 when one more sandbox would be more than the server runs. */
  check(): void {
    const max = this.d.config.maxSandboxes;
    if (this.live >= max)
      throw new LimitExceededError(
        `this server runs at most ${max} sandboxes (${SETTINGS.maxSandboxes.env}); delete one first`,
        { max },
      );
  }
}
