import {
  COUNTED_SANDBOX_STATES as COUNTED_STATES,
  LIVE_SANDBOX_STATES as LIVE_STATES,
  type Logger,
  type Runtime,
  type RuntimeStatus,
  type SandboxRecord,
  type SandboxState,
  type Store,
} from "@berth/core";
import type { Reaper } from "./reaper.js";
import type { SandboxService } from "./service.js";

type Outcome = { keep: SandboxState } | { fail: string };

/**
 * What a sandbox is after a restart, from its record, what is on the machine, and the intent
 * of an operation that the last run did not finish (a `transition` event with no state after
 * it). Interrupted operations are finished or undone so that store and machine agree:
 * hibernate and delete are finished; wake is finished if its sandbox runs, else undone; a
 * freeze the record does not know of (a pause or snapshot cut short) is thawed.
 */
async function reconcile(
  s: SandboxRecord,
  status: RuntimeStatus,
  intent: SandboxState | null,
  rt: Runtime,
): Promise<Outcome> {
  const gone = status.state === "missing";
  if (s.state === "starting") return { fail: "the server stopped while the sandbox was starting" };
  if (
    intent === "hibernated" ||
    (s.state === "hibernated" && status.state !== "running" && status.state !== "paused")
  ) {
    if (gone) return { fail: "the hibernated sandbox's files are gone" };
    await rt.hibernate(s.id); // idempotent: ends what runs, unmounts what a cut-short wake mounted
    return { keep: "hibernated" };
  }
  if (gone || status.state === "stopped")
    return { fail: "the sandbox's processes ended while the server was down" };
  if (status.state === "paused" && (s.state === "running" || intent === "running")) {
    await rt.resume(s.id);
    return { keep: "running" };
  }
  return { keep: status.state === "paused" ? "paused" : "running" };
}

/**
 * Runs at start, before the API answers: reconciles every live sandbox (see `reconcile`),
 * marks those whose processes died while the server was down `failed` (never forgotten), and
 * destroys runtime leftovers the store does not know as live (a crash mid-create or mid-delete).
 */
export async function recoverSandboxes(d: {
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  reaper: Reaper;
  log: Logger;
}): Promise<{ running: number; failed: number; orphans: number; changed: number }> {
  const live = new Set<string>();
  let counted = 0;
  let changed = 0;
  const toFail: { id: string; reason: string; counted: boolean }[] = [];
  let cursor: string | undefined;
  do {
    const page = await d.store.listSandboxes({
      states: LIVE_STATES,
      replica: d.sandboxes.replica,
      limit: 500,
      cursor,
    });
    for (const s of page.items) {
      const status = await d.runtime.inspect(s.id);
      const last = await d.store.lastEvent(s.id);
      const intent = last?.type === "transition" ? (last.data.to as SandboxState) : null;
      if (intent === "deleted") {
        toFail.push({ id: s.id, reason: "", counted: COUNTED_STATES.includes(s.state) });
        continue;
      }
      let outcome: Outcome;
      try {
        outcome = await reconcile(s, status, intent, d.runtime);
      } catch (err) {
        outcome = { fail: `recovery could not restore it: ${(err as Error).message}` };
      }
      if ("fail" in outcome) {
        toFail.push({ id: s.id, reason: outcome.fail, counted: COUNTED_STATES.includes(s.state) });
        continue;
      }
      if (outcome.keep !== s.state || intent) {
        await d.sandboxes.recordRecovered(s.id, outcome.keep, s.state);
        changed++;
      }
      live.add(s.id);
      if (COUNTED_STATES.includes(outcome.keep)) counted++;
      d.reaper.rememberOom(s.id, status.oomKills);
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  // Finishing one below takes it off the count again.
  d.sandboxes.setLiveCount(counted + toFail.filter((f) => f.counted).length);
  for (const f of toFail) {
    if (f.reason) await d.sandboxes.finish(f.id, "failed", f.reason, "recovery").catch(() => {});
    else await d.sandboxes.finish(f.id, "deleted", null, "recovery: delete finished").catch(() => {});
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
  return { running: live.size, failed: toFail.filter((f) => f.reason).length, orphans, changed };
}
