import {
  LIVE_SANDBOX_STATES,
  type Logger,
  NotSupportedError,
  type Runtime,
  type SandboxRecord,
  type Store,
} from "@berth/core";
import type { EventHub } from "../events/event-log.js";
import type { SandboxService } from "./service.js";

/** Dead sandboxes are looked for every this many ticks (`runc state` costs a process per sandbox). */
const HEALTH_EVERY_TICKS = 3;
/** A pass waits this many intervals (at least a second) for one sandbox's check, then goes on. */
const CHECK_WAIT_INTERVALS = 5;

/**
 * The server's clock: deletes sandboxes past their timeout or idle time, marks sandboxes whose
 * processes died as `failed`, records OOM kills as events, and writes activity times.
 */
export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private running: Promise<void> | undefined;
  private readonly oomSeen = new Map<string, number>();
  /** Checks still going (a hung API server, a sandbox too loaded to answer): not started again. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly d: {
      store: Store;
      runtime: Runtime;
      sandboxes: SandboxService;
      events: EventHub;
      log: Logger;
      intervalMs: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.sweep().finally(() => (this.running = undefined));
    }, this.d.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    // Checks still going get one more wait, then are left to fail on their own deadlines.
    await this.within(Promise.all(this.pending.values()).then(() => {}));
    await this.d.sandboxes.flushActivity().catch(() => {});
  }

  /** One pass over every live sandbox; errors are logged, never thrown (the next tick retries). */
  async sweep(): Promise<void> {
    const checkHealth = this.tick++ % HEALTH_EVERY_TICKS === 0;
    try {
      await this.d.sandboxes.flushActivity();
      let cursor: string | undefined;
      do {
        // Only this replica's: each sandbox is reaped by the one server whose runtime holds it.
        const page = await this.d.store.listSandboxes({
          states: LIVE_SANDBOX_STATES,
          replica: this.d.sandboxes.replica,
          limit: 500,
          cursor,
        });
        for (const s of page.items) await this.checkInTime(s, checkHealth);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    } catch (err) {
      this.d.log.error({ err: String(err) }, "reaper pass failed");
    }
  }

  /**
   * Checks one sandbox, waiting for it only so long: one sandbox whose calls hang must not hold
   * back the timeouts and idle actions of all the others. A check still going is not started twice.
   */
  private async checkInTime(s: SandboxRecord, checkHealth: boolean): Promise<void> {
    if (this.pending.has(s.id)) return;
    const p = this.check(s, checkHealth).finally(() => this.pending.delete(s.id));
    this.pending.set(s.id, p);
    if (!(await this.within(p)))
      this.d.log.warn(
        { sandboxId: s.id, waitedMs: this.waitMs },
        "reaper check still running; the pass goes on without it",
      );
  }

  private get waitMs(): number {
    return Math.max(1000, CHECK_WAIT_INTERVALS * this.d.intervalMs);
  }

  /** Whether `p` settled within the wait. */
  private async within(p: Promise<void>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), this.waitMs);
    });
    try {
      return await Promise.race([p.then(() => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async check(s: SandboxRecord, checkHealth: boolean): Promise<void> {
    const now = Date.now();
    try {
      if (s.expiresAt && Date.parse(s.expiresAt) <= now) {
        await this.d.events.append(s.id, "timeout", { timeoutSeconds: s.timeoutSeconds });
        await this.d.sandboxes.finish(s.id, "deleted", null, "timeout");
        return;
      }
      if (s.idle && (await this.idle(s, now))) {
        const { action, afterSeconds } = s.idle;
        await this.d.events.append(s.id, "idle", { afterSeconds, action });
        // Still running and still unused under the lock: it may have been woken and used since `s` was read.
        const still = (r: SandboxRecord) => this.quietSince(r, now);
        if (action === "delete") await this.d.sandboxes.finish(s.id, "deleted", null, "idle", still);
        else if (action === "pause")
          // A driver that cannot freeze (Kubernetes) frees the sandbox the other way.
          await this.d.sandboxes.pause(s.tenantId, s.id, still).catch((err) => {
            if (!(err instanceof NotSupportedError)) throw err;
            return this.d.sandboxes.hibernate(s.tenantId, s.id, still);
          });
        else await this.d.sandboxes.hibernate(s.tenantId, s.id, still);
        return;
      }
      if (checkHealth && s.state === "running") await this.checkHealth(s.id);
    } catch (err) {
      this.d.log.warn({ sandboxId: s.id, err: String(err) }, "reaper check failed");
    }
  }

  /**
   * Whether a running sandbox with an idle policy is idle: unused for its `afterSeconds` by the
   * API and by anything that holds it (see `SandboxActivity`), and its CPU under the threshold
   * since the last tick. Its CPU is read every tick it is not held, so that a busy stretch
   * anywhere in the window counts as a use; a sandbox with no earlier reading waits a tick.
   */
  private async idle(s: SandboxRecord, now: number): Promise<boolean> {
    if (s.idle === null || s.state !== "running") return false;
    const activity = this.d.sandboxes.activity;
    if (activity.held(s.id) > 0) return false;
    const cpu = await activity.sampleCpu(s.id);
    // A driver that cannot read the counter (an error) leaves the judgement to API use and holds.
    return (cpu === "quiet" || cpu === "unreadable") && this.quietSince(s, now);
  }

  /** `s` is running with an idle policy, nothing holds it and no use is recorded within `afterSeconds` before `now`. */
  private quietSince(
    s: SandboxRecord,
    now: number,
  ): s is SandboxRecord & { idle: NonNullable<SandboxRecord["idle"]> } {
    return (
      s.idle !== null && s.state === "running" && this.d.sandboxes.activity.quiet(s, s.idle.afterSeconds, now)
    );
  }

  /** Records new OOM kills; a sandbox whose init is gone becomes `failed`. */
  async checkHealth(id: string): Promise<void> {
    const status = await this.d.runtime.inspect(id);
    const seen = this.oomSeen.get(id) ?? 0;
    if (status.oomKills > seen) {
      this.oomSeen.set(id, status.oomKills);
      await this.d.events.append(id, "oom", { count: status.oomKills, new: status.oomKills - seen });
    }
    // What was seen here may be stale by now (hibernated, then woken): failIfDead looks again under the lock.
    if (
      (status.state === "stopped" || status.state === "missing") &&
      (await this.d.sandboxes.failIfDead(id, "the sandbox's processes ended unexpectedly", "died"))
    )
      this.oomSeen.delete(id);
  }

  /** After a restart: OOM kills that happened before are not reported again. */
  rememberOom(id: string, count: number): void {
    this.oomSeen.set(id, count);
  }
}
