import type { Resources, SandboxRun, SessionRecord, Store } from "@berth/core";

/** What compute costs: per CPU-hour and per GiB-hour of memory reserved (core config). */
export interface ComputePrices {
  cpuHourUsd: number;
  memoryGiBHourUsd: number;
}

/** A span of time in ms since the epoch: [from, to). */
interface Span {
  from: number;
  to: number;
}

/** The running time of one sandbox and how it is split between the sessions that used it. */
export interface ComputeSplit {
  /** Seconds the sandbox was running (paused, hibernated, starting and ended time not counted). */
  runningSeconds: number;
  /** Each session's share of those seconds. */
  sessions: Map<string, number>;
  /** Running seconds when none of its sessions was live: the sandbox's own. */
  unsharedSeconds: number;
}

/** USD per hour of a sandbox's reserved CPUs and memory. */
export function hourlyUsd(r: Pick<Resources, "cpus" | "memoryMiB">, p: ComputePrices): number {
  return r.cpus * p.cpuHourUsd + (r.memoryMiB / 1024) * p.memoryGiBHourUsd;
}

/**
 * Splits a sandbox's running stretches between its sessions: every moment it ran is shared
 * evenly by the sessions live then (from their creation to their end), so the shares and the
 * unshared rest add up to its running time exactly. A session live while the sandbox was
 * paused or hibernated gets nothing for that time.
 */
export function splitRunningTime(
  runs: Pick<SandboxRun, "startedAt" | "endedAt">[],
  sessions: Pick<SessionRecord, "id" | "createdAt" | "endedAt">[],
  now: number,
): ComputeSplit {
  const windows = sessions.map((s) => ({
    id: s.id,
    from: Date.parse(s.createdAt),
    to: s.endedAt ? Date.parse(s.endedAt) : now,
  }));
  const shares = new Map<string, number>(sessions.map((s) => [s.id, 0]));
  let running = 0;
  let unshared = 0;
  for (const run of runs) {
    const span: Span = { from: Date.parse(run.startedAt), to: run.endedAt ? Date.parse(run.endedAt) : now };
    if (!(span.to > span.from)) continue;
    running += span.to - span.from;
    // Between two neighbouring cuts the set of live sessions does not change.
    const cuts = [span.from, span.to];
    for (const w of windows) for (const t of [w.from, w.to]) if (t > span.from && t < span.to) cuts.push(t);
    cuts.sort((a, b) => a - b);
    for (let i = 0; i + 1 < cuts.length; i++) {
      const from = cuts[i] as number;
      const to = cuts[i + 1] as number;
      if (to <= from) continue;
      const live = windows.filter((w) => w.from <= from && w.to >= to);
      if (live.length === 0) unshared += to - from;
      for (const w of live) shares.set(w.id, (shares.get(w.id) ?? 0) + (to - from) / live.length);
    }
  }
  for (const [id, ms] of shares) shares.set(id, ms / 1000);
  return { runningSeconds: running / 1000, sessions: shares, unsharedSeconds: unshared / 1000 };
}

/** A sandbox's compute: its split running time, and what an hour of it costs. */
export interface SandboxCompute extends ComputeSplit {
  sandboxId: string;
  tenantId: string | null;
  createdAt: string | null;
  hourlyUsd: number;
}

/**
 * The compute of these sandboxes, each split between all of its sessions (read from the store,
 * whoever's they are: a share depends on every session live at the time).
 */
export async function computeOf(
  store: Store,
  sandboxIds: string[],
  prices: ComputePrices,
  now = Date.now(),
): Promise<Map<string, SandboxCompute>> {
  const ids = [...new Set(sandboxIds)];
  const runs = await store.listSandboxRuns(ids);
  const out = new Map<string, SandboxCompute>();
  for (const id of ids) {
    const sandbox = await store.getSandbox(id);
    const sessions = await store.listSessions({ sandboxId: id, limit: 10_000 });
    const split = splitRunningTime(
      runs.filter((r) => r.sandboxId === id),
      sessions,
      now,
    );
    out.set(id, {
      ...split,
      sandboxId: id,
      tenantId: sandbox?.tenantId ?? null,
      createdAt: sandbox?.createdAt ?? null,
      hourlyUsd: sandbox ? hourlyUsd(sandbox.resources, prices) : 0,
    });
  }
  return out;
}

/** A session's share of its sandbox's compute, in seconds and USD. */
export function sessionShare(
  c: SandboxCompute | undefined,
  sessionId: string,
): { seconds: number; usd: number } {
  const seconds = c?.sessions.get(sessionId) ?? 0;
  return { seconds, usd: (seconds / 3600) * (c?.hourlyUsd ?? 0) };
}
