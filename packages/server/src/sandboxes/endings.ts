import {
  type KeyedLock,
  type Logger,
  type Runtime,
  SANDBOX_TRANSITIONS,
  type SandboxRecord,
  type SandboxState,
  type Store,
  type StoreTx,
} from "@berth/core";
import type { EventHub } from "../events/event-log.js";
import type { ServerMetrics } from "../metrics.js";
import type { SandboxCapacity } from "./capacity.js";

/**
 * Keeps the sandbox's running stretches (what its compute is billed for) in step with its
 * state: a stretch opens when it starts running and closes when it stops, whatever the reason.
 */
export async function recordRun(
  tx: StoreTx,
  id: string,
  state: SandboxState,
  at = new Date().toISOString(),
): Promise<void> {
  if (state === "running") await tx.startSandboxRun(id, at);
  else await tx.endSandboxRun(id, at);
}

/** How a sandbox ends: deleted (asked for, timed out, idle) or failed (died, could not start). */
export type Ending = "deleted" | "failed";

/**
 * Ends sandboxes: destroys their runtime resources and records the final state, under each
 * sandbox's lock (the service's), so that an end never interleaves with a create or a transition.
 */
export class SandboxEndings {
  constructor(
    private readonly d: {
      store: Store;
      runtime: Runtime;
      events: EventHub;
      metrics: ServerMetrics;
      log: Logger;
      lock: KeyedLock;
      capacity: SandboxCapacity;
      /** Drops what the server keeps in memory for the sandbox (clients, activity). */
      forget: (id: string) => void;
    },
  ) {}

  /**
   * Ends a sandbox. Used by delete, timeouts, the reaper and recovery (`onlyIf`: what must still
   * hold of the record under the lock). A failed destroy leaves the sandbox `failed` so that
   * the next start's orphan sweep retries it.
   */
  finish(
    id: string,
    state: Ending,
    reason: string | null,
    why: string,
    onlyIf?: (current: SandboxRecord) => boolean,
  ): Promise<void> {
    return this.d.lock.run(id, () => this.finishLocked(id, state, reason, why, onlyIf));
  }

  /**
   * Fails a running sandbox whose processes are gone (the reaper's health check). The runtime is
   * asked again under the sandbox's lock: what the caller saw may be stale, since a hibernate and
   * a wake can both run between its look and this call (a woken sandbox was lost that way).
   * Answers whether the sandbox was failed.
   */
  failIfDead(id: string, reason: string, why: string): Promise<boolean> {
    return this.d.lock.run(id, async () => {
      if ((await this.d.store.getSandbox(id))?.state !== "running") return false;
      const now = await this.d.runtime.inspect(id);
      if (now.state !== "stopped" && now.state !== "missing") return false;
      await this.finishLocked(id, "failed", reason, why);
      return true;
    });
  }

  /** `finish`, with the sandbox's lock held. */
  async finishLocked(
    id: string,
    state: Ending,
    reason: string | null,
    why: string,
    onlyIf?: (current: SandboxRecord) => boolean,
  ): Promise<void> {
    const r = await this.d.store.getSandbox(id);
    // Nothing to do for a sandbox already where the action leads, or one it cannot leave (deleted).
    const to = r && SANDBOX_TRANSITIONS[r.state][state === "deleted" ? "delete" : "fail"];
    if (!r || to === undefined || to === r.state) return;
    // The caller looked at an older record (the reaper): act only if nothing changed since.
    if (onlyIf && !onlyIf(r)) return;
    if (state === "deleted") {
      // Recorded first: if the server dies while destroying, the next start finds a deleted
      // sandbox with leftovers and sweeps them (done, never half-done).
      await this.markFinished(id, state, reason, why);
      await this.d.runtime.destroy(id).catch((err) => {
        this.d.log.error({ sandboxId: id, err: String(err) }, "destroy failed; the next start sweeps it");
      });
      return;
    }
    try {
      await this.d.runtime.destroy(id);
    } catch (err) {
      this.d.log.error({ sandboxId: id, err: String(err) }, "destroy failed");
      await this.markFinished(id, "failed", `could not be removed: ${(err as Error).message}`);
      throw err;
    }
    await this.markFinished(id, state, reason, why);
  }

  /** Records the final state of a sandbox whose runtime part is gone (or never was). */
  async markFinished(id: string, state: Ending, reason: string | null, why?: string): Promise<void> {
    const before = await this.d.store.getSandbox(id);
    // State, billed stretch and exposed ports (with their tokens) end together.
    await this.d.store.transaction(async (tx) => {
      await tx.updateSandbox(id, { state, ...(reason ? { failureReason: reason } : {}) });
      await recordRun(tx, id, state);
      await tx.deletePorts(id);
    });
    if (before) this.d.capacity.moved(before.state, state);
    if (state === "deleted") this.d.metrics.deletes++;
    this.d.forget(id);
    await this.d.events.append(id, "state", {
      state,
      ...(reason ? { reason } : {}),
      ...(why ? { why } : {}),
    });
  }
}
