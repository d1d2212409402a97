import {
  type KeyedLock,
  nextSandboxState,
  type Runtime,
  type SandboxRecord,
  type SandboxState,
  type Store,
} from "@berth/core";
import type { EventHub } from "../events/event-log.js";
import type { ServerMetrics } from "../metrics.js";
import type { SandboxActivity } from "./activity.js";
import type { SandboxCapacity } from "./capacity.js";
import { recordRun } from "./endings.js";
import type { WakeProcesses } from "./wake-processes.js";

/** The lifecycle requests a tenant, a session or the reaper makes. */
export type LifecycleAction = "pause" | "resume" | "hibernate" | "wake";

/** What must still hold of a sandbox's record under its lock for an action to go ahead. */
export type StillTrue = (r: SandboxRecord) => boolean;

/**
 * Pause, resume, hibernate and wake, each under the sandbox's lock and as the sandbox state
 * machine in core allows (an action that leaves the sandbox where it is answers it as is; one
 * the table does not allow is a 409 `invalid_state`).
 */
export class SandboxLifecycle {
  constructor(
    private readonly d: {
      store: Store;
      runtime: Runtime;
      events: EventHub;
      metrics: ServerMetrics;
      lock: KeyedLock;
      capacity: SandboxCapacity;
      activity: SandboxActivity;
      wakeProcesses: WakeProcesses;
      /** The tenant's sandbox (404 for another tenant's). */
      get: (tenantId: string, id: string) => Promise<SandboxRecord>;
      /** Drops the cached supervisor client of a sandbox whose processes end. */
      dropClient: (id: string) => void;
    },
  ) {}

  /** Freezes the sandbox's processes (idempotent for a paused one). */
  pause(tenantId: string, id: string, onlyIf?: StillTrue): Promise<SandboxRecord> {
    return this.apply(tenantId, id, "pause", () => this.d.runtime.pause(id), onlyIf);
  }

  /** Thaws a paused sandbox (idempotent for a running one). */
  resume(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.apply(tenantId, id, "resume", () => this.d.runtime.resume(id));
  }

  /** Stops every process and frees the memory; files, network, env and id stay. */
  hibernate(tenantId: string, id: string, onlyIf?: StillTrue): Promise<SandboxRecord> {
    const act = async (from: SandboxState) => {
      if (from === "paused") await this.d.runtime.resume(id);
      await this.d.wakeProcesses.forgetEnded(id);
      await this.d.runtime.hibernate(id);
      this.d.dropClient(id);
    };
    return this.apply(tenantId, id, "hibernate", act, onlyIf);
  }

  /** Starts a hibernated sandbox again (idempotent for a running one). */
  wake(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.apply(tenantId, id, "wake", async () => {
      this.d.capacity.check();
      const t0 = performance.now();
      const runtimeInfo = await this.d.runtime.wake(id);
      await this.d.store.updateSandbox(id, { runtimeInfo });
      this.d.metrics.observeWake((performance.now() - t0) / 1000);
      await this.d.wakeProcesses.restart(id);
    });
  }

  /** Applies `action` by `act` under the sandbox's lock (`onlyIf`: else nothing changes). */
  private apply(
    tenantId: string,
    id: string,
    action: LifecycleAction,
    act: (from: SandboxState) => Promise<void>,
    onlyIf?: StillTrue,
  ): Promise<SandboxRecord> {
    return this.d.lock.run(id, async () => {
      const s = await this.d.get(tenantId, id);
      const to = nextSandboxState(id, s.state, action);
      if (to === s.state || (onlyIf && !onlyIf(s))) return s;
      // The intent goes first: a server killed during `act` finishes or undoes it on restart.
      await this.d.events.append(id, "transition", { from: s.state, to });
      await act(s.state);
      const next = await this.d.store.transaction(async (tx) => {
        const r = await tx.updateSandbox(id, { state: to });
        await recordRun(tx, id, to);
        return r;
      });
      // Its CPU counter is read afresh once it runs again (a woken sandbox's starts at zero).
      this.d.activity.forgetCpu(id);
      this.d.capacity.moved(s.state, to);
      void this.d.events.append(id, "state", { state: to, from: s.state }).catch(() => {});
      return next ?? { ...s, state: to };
    });
  }
}
