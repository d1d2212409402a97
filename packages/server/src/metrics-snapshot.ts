import type { SandboxRecord } from "@berth/core";
import type { MetricsSnapshot, SandboxSample } from "./metrics.js";
import type { ServerContext } from "./routes/context.js";

/** Sandboxes read per store page while collecting per-sandbox series. */
const PAGE = 500;

/**
 * What a scrape reads now: sandboxes by state from the store and, unless turned off, each
 * running or paused sandbox's cgroup and network counters from the runtime. A sandbox that
 * ends during the scrape is left out, not an error.
 */
export async function metricsSnapshot(ctx: ServerContext): Promise<MetricsSnapshot> {
  const byState = await ctx.store.countSandboxesByState();
  const sandboxesByState = Object.fromEntries(Object.entries(byState).map(([k, v]) => [k, v ?? 0]));
  const sessionsByState = await ctx.store.countSessionsByState();
  if (!ctx.config.metricsPerSandbox) return { sandboxesByState, sessionsByState, sandboxes: null };
  const live: SandboxRecord[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await ctx.store.listSandboxes({
      states: ["running", "paused"],
      replica: ctx.replica,
      limit: PAGE,
      cursor,
    });
    live.push(...page.items);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  const samples = await Promise.all(
    live.map(async (s): Promise<SandboxSample | null> => {
      try {
        const st = await ctx.runtime.stats(s.id);
        return {
          id: s.id,
          tenantId: s.tenantId,
          cpuSeconds: st.cpuSeconds,
          memoryBytes: st.memoryBytes,
          diskBytes: st.diskBytes,
          netRxBytes: st.netRxBytes,
          netTxBytes: st.netTxBytes,
        };
      } catch {
        return null;
      }
    }),
  );
  return {
    sandboxesByState,
    sessionsByState,
    sandboxes: samples.filter((x): x is SandboxSample => x !== null),
  };
}
