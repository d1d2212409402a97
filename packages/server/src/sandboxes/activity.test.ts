/**
 * The idle policy's rules in `SandboxActivity`: holds, API use and the CPU verdict. The CPU
 * counter here is a plain number the test moves (what `runtime.stats` reads from the cgroup);
 * the real counter of a real sandbox is covered by test/e2e/idle.test.ts.
 */
import type { SandboxRecord, SandboxStats, Store } from "@berth/core";
import { describe, expect, it } from "vitest";
import { SandboxActivity } from "./activity.js";

/** A counter standing in for the cgroup's CPU time; `gone` makes stats fail (sandbox stopped). */
const counter = { cpuSeconds: 0, gone: false };
const activity = new SandboxActivity({
  store: {} as Store,
  runtime: {
    stats: async () => {
      if (counter.gone) throw new Error("gone");
      return { cpuSeconds: counter.cpuSeconds } as SandboxStats;
    },
  },
  idleCpuPercent: 5,
});
const record = (id: string, lastActivityAt: string) => ({ id, lastActivityAt }) as SandboxRecord;
const longAgo = new Date(Date.now() - 60_000).toISOString();

/** Reads the counter after it moved by `cpuSeconds` over at least `ms` of wall time. */
async function sampleAfter(id: string, ms: number, cpuSeconds: number) {
  const t0 = Date.now();
  // The verdict is a rate: it needs wall time between readings.
  while (Date.now() - t0 < ms) await new Promise((r) => setImmediate(r));
  counter.cpuSeconds += cpuSeconds;
  return activity.sampleCpu(id);
}

describe("sandbox activity", () => {
  it("is quiet only after afterSeconds without use, and a hold keeps it busy until released", () => {
    const r = record("sb_hold", longAgo);
    const now = Date.now();
    expect(activity.quiet(r, 30, now)).toBe(true);
    const release = activity.hold(r.id);
    const second = activity.hold(r.id);
    expect(activity.quiet(r, 30, now)).toBe(false);
    release();
    release(); // a second call does nothing: the other hold still counts
    expect(activity.held(r.id)).toBe(1);
    second();
    expect(activity.held(r.id)).toBe(0);
    // Its idle time starts when the last hold ends.
    expect(activity.quiet(r, 30, Date.now())).toBe(false);
    expect(activity.quiet(r, 30, Date.now() + 30_000)).toBe(true);
  });

  it("judges CPU from two readings: unmeasured first, busy above the threshold (a use), quiet below", async () => {
    const r = record("sb_cpu", longAgo);
    expect(await activity.sampleCpu(r.id)).toBe("unmeasured");
    // 0.5 s of CPU in >= 20 ms of wall time is far above 5 % of a core.
    expect(await sampleAfter(r.id, 20, 0.5)).toBe("busy");
    expect(activity.quiet(r, 1, Date.now() + 500)).toBe(false);
    // No CPU at all since: quiet.
    expect(await sampleAfter(r.id, 20, 0)).toBe("quiet");
    // A counter that went back is a new container (woken): measured afresh.
    counter.cpuSeconds = 0;
    expect(await activity.sampleCpu(r.id)).toBe("unmeasured");
    // Stats that cannot be read say so (the reaper then judges by API use and holds alone).
    counter.gone = true;
    expect(await activity.sampleCpu(r.id)).toBe("unreadable");
    counter.gone = false;
    expect(await activity.sampleCpu(r.id)).toBe("unmeasured");
    activity.forgetCpu(r.id);
    expect(await activity.sampleCpu(r.id)).toBe("unmeasured");
  });
});
