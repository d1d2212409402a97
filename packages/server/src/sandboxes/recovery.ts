import type { Logger, Runtime, Store } from "@berth/core";
import type { Reaper } from "./reaper.js";
import { LIVE_STATES, type SandboxService } from "./service.js";

/**
 * Runs at start, before the API answers: sandboxes still running are carried on; those whose
 * processes died while the server was down become `failed` (never forgotten); runtime leftovers
 * that the store does not know as live (a crash mid-create or mid-delete) are destroyed.
 */
export async function recoverSandboxes(d: {
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  reaper: Reaper;
  log: Logger;
}): Promise<{ running: number; failed: number; orphans: number }> {
  const live = new Set<string>();
  let counted = 0;
  let failed = 0;
  let cursor: string | undefined;
  const toFail: { id: string; reason: string; counted: boolean }[] = [];
  do {
    const page = await d.store.listSandboxes({ states: LIVE_STATES, limit: 500, cursor });
    for (const s of page.items) {
      const status = await d.runtime.inspect(s.id);
      const carriesOn =
        (s.state === "running" && status.state === "running") ||
        (s.state === "paused" && status.state === "paused") ||
        // A hibernated sandbox has no processes; its kept files are what must still be there.
        (s.state === "hibernated" && status.state === "stopped");
      if (carriesOn) {
        live.add(s.id);
        if (s.state !== "hibernated") counted++;
        d.reaper.rememberOom(s.id, status.oomKills);
      } else
        toFail.push({
          id: s.id,
          counted: s.state !== "hibernated",
          reason:
            s.state === "starting"
              ? "the server stopped while the sandbox was starting"
              : s.state === "hibernated"
                ? "the hibernated sandbox's files are gone"
                : "the sandbox's processes ended while the server was down",
        });
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  // Failing one below takes it off the count again.
  d.sandboxes.setLiveCount(counted + toFail.filter((f) => f.counted).length);
  for (const f of toFail) {
    await d.sandboxes.finish(f.id, "failed", f.reason, "recovery").catch(() => {});
    failed++;
  }
  let orphans = 0;
  for (const id of await d.runtime.list()) {
    if (live.has(id)) continue;
    d.log.warn({ sandboxId: id }, "destroying leftovers of a sandbox that is not live");
    await d.runtime
      .destroy(id)
      .catch((err) => d.log.error({ sandboxId: id, err: String(err) }, "orphan destroy failed"));
    orphans++;
  }
  return { running: live.size, failed, orphans };
}
