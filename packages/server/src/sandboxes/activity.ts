import type { Runtime, SandboxRecord, Store } from "@berth/core";

/** One reading of a sandbox's CPU counter. */
interface CpuSample {
  cpuSeconds: number;
  atMs: number;
}

/**
 * What the CPU counter said since the last reading. `unmeasured`: no earlier reading to compare
 * with; `unreadable`: the driver could not read it (idle is then judged by API use and holds).
 */
export type CpuVerdict = "busy" | "quiet" | "unmeasured" | "unreadable";

/**
 * Whether sandboxes are in use, for idle policies. A sandbox is in use while any of these holds:
 * an API call used it within the idle window (`touch`), something holds it open (`hold`: an
 * agent turn, a proxied connection, a terminal, an exec stream, any request in flight), or its
 * processes used more CPU than the threshold since the reaper's last reading (`sampleCpu`).
 */
export class SandboxActivity {
  /** Last use not yet written to the store (written by `flush`, at most once a reaper tick). */
  private readonly pending = new Map<string, number>();
  private readonly holds = new Map<string, number>();
  private readonly cpu = new Map<string, CpuSample>();

  constructor(
    private readonly d: {
      store: Store;
      runtime: Pick<Runtime, "stats">;
      /** CPU use (percent of one core) above which a sandbox counts as busy. */
      idleCpuPercent: number;
    },
  ) {}

  /** Records a use of the sandbox now. */
  touch(id: string): void {
    this.pending.set(id, Date.now());
  }

  /**
   * Marks the sandbox busy until the returned function is called (calling it again does
   * nothing). Its idle time starts when the last hold ends.
   */
  hold(id: string): () => void {
    this.holds.set(id, (this.holds.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(id) ?? 1) - 1;
      if (n > 0) this.holds.set(id, n);
      else this.holds.delete(id);
      this.touch(id);
    };
  }

  /** How many holds the sandbox has open. */
  held(id: string): number {
    return this.holds.get(id) ?? 0;
  }

  /** Last use of a sandbox in ms, including what is not yet written. */
  lastActivity(r: SandboxRecord): number {
    return this.pending.get(r.id) ?? Date.parse(r.lastActivityAt);
  }

  /**
   * Reads the sandbox's CPU counter and compares it with the last reading: above the threshold
   * counts as a use now. `unmeasured` when there is no earlier reading to compare with (a new,
   * woken or resumed sandbox), `unreadable` when the driver could not read it.
   */
  async sampleCpu(id: string): Promise<CpuVerdict> {
    let cpuSeconds: number;
    try {
      ({ cpuSeconds } = await this.d.runtime.stats(id));
    } catch {
      this.cpu.delete(id);
      return "unreadable";
    }
    const now: CpuSample = { cpuSeconds, atMs: Date.now() };
    const before = this.cpu.get(id);
    this.cpu.set(id, now);
    // A counter that went back belongs to a new container (a wake): start over.
    if (!before || now.atMs <= before.atMs || now.cpuSeconds < before.cpuSeconds) return "unmeasured";
    const percent = ((now.cpuSeconds - before.cpuSeconds) * 1000 * 100) / (now.atMs - before.atMs);
    if (percent <= this.d.idleCpuPercent) return "quiet";
    this.touch(id);
    return "busy";
  }

  /**
   * Whether the sandbox has been unused for `afterSeconds` before `nowMs` by what is known
   * without reading its CPU (API use and holds). The reaper checks this again under the
   * sandbox's lock before it acts.
   */
  quiet(r: SandboxRecord, afterSeconds: number, nowMs: number): boolean {
    return this.held(r.id) === 0 && this.lastActivity(r) + afterSeconds * 1000 <= nowMs;
  }

  /** Forgets the CPU reading of a sandbox that stopped running (paused, hibernated, gone). */
  forgetCpu(id: string): void {
    this.cpu.delete(id);
  }

  /** Forgets everything about a sandbox that ended. */
  forget(id: string): void {
    this.pending.delete(id);
    this.cpu.delete(id);
  }

  /** Writes pending activity times to the store. */
  async flush(): Promise<void> {
    for (const [id, at] of [...this.pending]) {
      await this.d.store.updateSandbox(id, { lastActivityAt: new Date(at).toISOString() });
      // A touch that came in meanwhile stays pending for the next flush.
      if (this.pending.get(id) === at) this.pending.delete(id);
    }
  }
}
