import {
  BerthError,
  type Config,
  ConflictError,
  InvalidRequestError,
  KeyedLock,
  LimitExceededError,
  type Logger,
  NotFoundError,
  NotSupportedError,
  newSandboxId,
  type Runtime,
  SANDBOX_STATES,
  SandboxError,
  type SandboxRecord,
  type SandboxState,
  SETTINGS,
  type SnapshotRecord,
  type Store,
  type StoreTx,
  type VolumeMount,
} from "@berth/core";
import type { CreateSandboxBody, PatchSandboxBody } from "@berth/core/contract";
import { SupervisorClient } from "@berth/supervisor";
import type { ServerMetrics } from "../metrics.js";
import { checkTemplate, expiryOf, resolveNetwork, resolveResources, resolveTimeout } from "./create-spec.js";
import type { EventHub } from "./event-hub.js";
import { processEnv } from "./sandbox-env.js";
import type { SnapshotService } from "./snapshots.js";
import type { VolumeService } from "./volumes.js";

/** States in which a sandbox holds runtime resources (processes, or a kept disk and network). */
export const LIVE_STATES: SandboxState[] = ["starting", "running", "paused", "hibernated"];
/** States that count against `maxSandboxes` (they hold memory). */
export const COUNTED_STATES: SandboxState[] = ["starting", "running", "paused"];

/** Where the wake time of a request that woke its sandbox is reported. */
export interface WakeReport {
  header(name: string, value: string): unknown;
}
const LISTED_BY_DEFAULT = SANDBOX_STATES.filter((s) => s !== "deleted");

export interface SandboxServiceDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  events: EventHub;
  metrics: ServerMetrics;
  log: Logger;
  /** This server's replica id: its sandboxes are the ones it creates, recovers and reaps. */
  replica: string;
}

/**
 * Sandboxes as tenants see them: the store row is the truth, the runtime holds the processes.
 * Create and delete of one sandbox never interleave (per-id lock).
 */
export class SandboxService {
  private readonly lock = new KeyedLock();
  private readonly clients = new Map<string, SupervisorClient>();
  /** Activity not yet written to the store (written by `flushActivity`, at most once a tick). */
  private readonly activity = new Map<string, number>();
  private live = 0;
  private snapshots: SnapshotService | undefined;
  private volumes: VolumeService | undefined;

  /** This server's replica id. */
  get replica(): string {
    return this.d.replica;
  }

  constructor(private readonly d: SandboxServiceDeps) {}

  /** Sets a sandbox's state after recovery found it so on the machine (no runtime action). */
  async recordRecovered(id: string, state: SandboxState, from: SandboxState): Promise<void> {
    await this.d.store.transaction(async (tx) => {
      await tx.updateSandbox(id, { state });
      await recordRun(tx, id, state);
    });
    await this.d.events.append(id, "state", { state, from, recovered: true });
  }

  /** Sets the count of live sandboxes (after recovery) that `maxSandboxes` is checked against. */
  setLiveCount(n: number): void {
    this.live = n;
    this.d.metrics.liveSandboxes = n;
  }

  /** Wires in volumes. */
  useVolumes(v: VolumeService): void {
    this.volumes = v;
  }

  /** Wires in snapshots (they need this service too). */
  useSnapshots(s: SnapshotService): void {
    this.snapshots = s;
  }

  async create(tenantId: string, body: CreateSandboxBody): Promise<SandboxRecord> {
    const c = this.d.config;
    const from = body.fromSnapshot ? await this.snapshotFor(tenantId, body.fromSnapshot) : undefined;
    if (from && body.template !== undefined && body.template !== from.template)
      throw new InvalidRequestError(`the snapshot was taken from template '${from.template}'`, {
        field: "template",
      });
    const template = body.template ?? from?.template ?? "default";
    if (template !== "default")
      checkTemplate(template, (await this.d.runtime.getTemplate(template)) !== null);
    const resources = resolveResources(c, { ...from?.resources, ...body.resources });
    const volumes = body.volumes?.length ? await this.volumesFor(tenantId, body.volumes) : [];
    if (from && resources.diskMiB < from.resources.diskMiB)
      throw new InvalidRequestError(
        `resources.diskMiB must be at least the snapshot's ${from.resources.diskMiB} MiB, got ${resources.diskMiB}`,
        { field: "resources.diskMiB" },
      );
    const network = resolveNetwork(body.network, this.d.runtime.egressModes);
    const timeoutSeconds = resolveTimeout(c, body.timeoutSeconds);
    this.checkCapacity();
    const now = new Date().toISOString();
    const record: SandboxRecord = {
      id: newSandboxId(),
      tenantId,
      replica: this.d.replica,
      state: "starting",
      template,
      resources,
      network,
      env: { ...from?.env, ...body.env },
      labels: body.labels ?? {},
      idle: body.idle ?? null,
      timeoutSeconds,
      createdAt: now,
      expiresAt: expiryOf(now, timeoutSeconds),
      lastActivityAt: now,
      failureReason: null,
      runtimeInfo: {},
      volumes: body.volumes ?? [],
    };
    this.setLiveCount(this.live + 1);
    const started = performance.now();
    try {
      await this.d.store.insertSandbox(record);
    } catch (err) {
      this.setLiveCount(this.live - 1);
      throw err;
    }
    return this.lock.run(record.id, async () => {
      try {
        const runtimeInfo = await this.d.runtime.create({
          id: record.id,
          template: record.template,
          resources,
          network,
          env: record.env,
          fromSnapshot: from && this.snapshots?.path(from.id),
          volumes,
        });
        const running = await this.d.store.transaction(async (tx) => {
          const next = await tx.updateSandbox(record.id, { state: "running", runtimeInfo });
          await recordRun(tx, record.id, "running");
          return next;
        });
        this.d.metrics.observeCreate((performance.now() - started) / 1000);
        void this.d.events.append(record.id, "state", { state: "running" }).catch(() => {});
        return running ?? { ...record, state: "running", runtimeInfo };
      } catch (err) {
        // A request the runtime found bad (a mount path through a symlink) made no sandbox:
        // the runtime has undone its part, and no failed record is left either.
        if (err instanceof InvalidRequestError) {
          await this.d.store.purgeSandbox(record.id);
          this.setLiveCount(this.live - 1);
          throw err;
        }
        const reason = err instanceof BerthError ? err.message : "the sandbox could not be started";
        this.d.log.error({ sandboxId: record.id, err: String(err) }, "sandbox create failed");
        await this.markFinished(record.id, "failed", reason);
        throw err instanceof BerthError ? err : new SandboxError(`could not start the sandbox: ${reason}`);
      }
    });
  }

  /**
   * Hands a running sandbox made ahead of time (the agents' warm pool) to a tenant as if it had
   * just been created for them: new owner, creation time, lifetime and labels, and the network
   * policy asked for. Checks every field before changing anything.
   */
  async adopt(
    id: string,
    tenantId: string,
    body: Pick<CreateSandboxBody, "labels" | "timeoutSeconds" | "network">,
  ): Promise<SandboxRecord> {
    const timeoutSeconds = resolveTimeout(this.d.config, body.timeoutSeconds);
    const network = body.network ? resolveNetwork(body.network, this.d.runtime.egressModes) : undefined;
    return this.lock.run(id, async () => {
      const current = await this.d.store.getSandbox(id);
      if (current?.state !== "running") throw new ConflictError(`sandbox '${id}' is not running`);
      if (network) await this.d.runtime.setNetworkPolicy(id, network);
      const now = new Date().toISOString();
      // The new owner and the fresh compute record land together: never billed for the pool.
      return this.d.store.transaction(async (tx) => {
        const next = await tx.updateSandbox(id, {
          tenantId,
          createdAt: now,
          lastActivityAt: now,
          timeoutSeconds,
          expiresAt: expiryOf(now, timeoutSeconds),
          labels: body.labels ?? {},
          ...(network ? { network } : {}),
        });
        if (!next) throw new NotFoundError("sandbox", id);
        // Its time in the pool was the server's: the tenant's compute starts now.
        await tx.deleteSandboxRuns(id);
        await recordRun(tx, id, "running", now);
        return next;
      });
    });
  }

  private async volumesFor(tenantId: string, mounts: VolumeMount[]) {
    if (!this.volumes) throw new NotSupportedError("volumes are not available");
    return this.volumes.resolve(tenantId, mounts);
  }

  private async snapshotFor(tenantId: string, id: string): Promise<SnapshotRecord> {
    if (!this.snapshots) throw new NotSupportedError("snapshots are not available");
    return this.snapshots.get(tenantId, id);
  }

  /** The tenant's sandbox (another tenant's id is 404, as if it did not exist). */
  async get(tenantId: string, id: string): Promise<SandboxRecord> {
    const r = await this.d.store.getSandbox(id);
    if (!r || r.tenantId !== tenantId) throw new NotFoundError("sandbox", id);
    const touched = this.activity.get(id);
    return touched ? { ...r, lastActivityAt: new Date(touched).toISOString() } : r;
  }

  /**
   * The tenant's sandbox, running: a paused one is resumed and a hibernated one woken first
   * (the time it took goes into the `X-Berth-Wake-Ms` header of `report`). Counts as activity.
   */
  /** The environment of a process started in `sandbox` (see processEnv), with the driver's variables. */
  processEnv(sandbox: SandboxRecord, extra?: Record<string, string>): Record<string, string> {
    return processEnv(sandbox, extra, this.d.runtime.addressing.processEnv(sandbox.id));
  }

  async running(
    tenantId: string,
    id: string,
    report?: WakeReport,
  ): Promise<{ sandbox: SandboxRecord; client: SupervisorClient }> {
    let sandbox = await this.get(tenantId, id);
    if (sandbox.state === "paused" || sandbox.state === "hibernated") {
      const t0 = performance.now();
      sandbox = sandbox.state === "paused" ? await this.resume(tenantId, id) : await this.wake(tenantId, id);
      report?.header("x-berth-wake-ms", (performance.now() - t0).toFixed(1));
    }
    if (sandbox.state !== "running")
      throw new ConflictError(`sandbox '${id}' is ${sandbox.state}, not running`, { state: sandbox.state });
    this.touch(id);
    return { sandbox, client: this.client(id) };
  }

  /** Freezes the sandbox's processes (idempotent for a paused one). */
  pause(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.transition(tenantId, id, ["running"], "paused", () => this.d.runtime.pause(id));
  }

  /** Thaws a paused sandbox (idempotent for a running one). */
  resume(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.transition(tenantId, id, ["paused"], "running", () => this.d.runtime.resume(id));
  }

  /** Stops every process and frees the memory; files, network, env and id stay. */
  hibernate(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.transition(tenantId, id, ["running", "paused"], "hibernated", async (from) => {
      if (from === "paused") await this.d.runtime.resume(id);
      await this.forgetEndedWakeProcesses(id);
      await this.d.runtime.hibernate(id);
      this.clients.delete(id);
    });
  }

  /** Starts a hibernated sandbox again (idempotent for a running one). */
  wake(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.transition(tenantId, id, ["hibernated"], "running", async () => {
      this.checkCapacity();
      const t0 = performance.now();
      const runtimeInfo = await this.d.runtime.wake(id);
      await this.d.store.updateSandbox(id, { runtimeInfo });
      this.d.metrics.observeWake((performance.now() - t0) / 1000);
      await this.restartWakeProcesses(id);
    });
  }

  /** `restart: "on-wake"` processes that ended before the hibernate do not come back. */
  private async forgetEndedWakeProcesses(id: string): Promise<void> {
    const wanted = await this.d.store.listWakeProcesses(id);
    if (wanted.length === 0) return;
    const running = new Set(
      (await this.client(id).processes()).filter((p) => p.state === "running").map((p) => p.pid),
    );
    for (const w of wanted) if (!running.has(w.pid)) await this.d.store.deleteWakeProcess(id, w.pid);
  }

  /** Starts the `restart: "on-wake"` processes of a woken sandbox again (recorded under their new pids). */
  private async restartWakeProcesses(id: string): Promise<void> {
    const wanted = await this.d.store.listWakeProcesses(id);
    const sandbox = wanted.length > 0 ? await this.d.store.getSandbox(id) : null;
    if (!sandbox) return;
    for (const w of wanted) {
      try {
        const { pid } = await this.client(id).spawn({
          cmd: w.cmd,
          cwd: w.cwd ?? undefined,
          env: this.processEnv(sandbox, w.env),
        });
        await this.d.store.transaction(async (tx) => {
          await tx.deleteWakeProcess(id, w.pid);
          await tx.saveWakeProcess({ ...w, pid });
        });
      } catch (err) {
        this.d.log.warn(
          { sandboxId: id, cmd: w.cmd, err: String(err) },
          "could not restart a process on wake",
        );
        void this.d.events
          .append(id, "restart_failed", { cmd: w.cmd, error: (err as Error).message })
          .catch(() => {});
      }
    }
  }

  /**
   * Moves a sandbox from one of `from` to `to` by `act`, under its lock; a sandbox already in
   * `to` is returned as is, any other state is a 409.
   */
  private transition(
    tenantId: string,
    id: string,
    from: SandboxState[],
    to: SandboxState,
    act: (from: SandboxState) => Promise<void>,
  ): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const s = await this.get(tenantId, id);
      if (s.state === to) return s;
      if (!from.includes(s.state))
        throw new ConflictError(
          `sandbox '${id}' is ${s.state}; it must be ${from.join(" or ")} to become ${to}`,
          {
            state: s.state,
          },
        );
      // The intent goes first: a server killed during `act` finishes or undoes it on restart.
      await this.d.events.append(id, "transition", { from: s.state, to });
      await act(s.state);
      const next = await this.d.store.transaction(async (tx) => {
        const r = await tx.updateSandbox(id, { state: to });
        await recordRun(tx, id, to);
        return r;
      });
      if (COUNTED_STATES.includes(s.state) !== COUNTED_STATES.includes(to))
        this.setLiveCount(this.live + (COUNTED_STATES.includes(to) ? 1 : -1));
      void this.d.events.append(id, "state", { state: to, from: s.state }).catch(() => {});
      return next ?? { ...s, state: to };
    });
  }

  private checkCapacity(): void {
    const c = this.d.config;
    if (this.live >= c.maxSandboxes)
      throw new LimitExceededError(
        `this server runs at most ${c.maxSandboxes} sandboxes (${SETTINGS.maxSandboxes.env}); delete one first`,
        { max: c.maxSandboxes },
      );
  }

  /** A client of the sandbox's supervisor (each operation opens its own connection). */
  client(id: string): SupervisorClient {
    let c = this.clients.get(id);
    if (!c) {
      c = new SupervisorClient(() => this.d.runtime.connect(id));
      this.clients.set(id, c);
    }
    return c;
  }

  async list(
    tenantId: string,
    q: { state?: SandboxState; labels: Record<string, string>; limit?: number; cursor?: string },
  ): Promise<{ items: SandboxRecord[]; nextCursor: string | null }> {
    return this.d.store.listSandboxes({
      tenantId,
      states: q.state ? [q.state] : LISTED_BY_DEFAULT,
      labels: q.labels,
      limit: q.limit,
      cursor: q.cursor,
    });
  }

  async update(tenantId: string, id: string, patch: PatchSandboxBody): Promise<SandboxRecord> {
    const current = await this.get(tenantId, id);
    if (current.state === "deleted") throw new ConflictError(`sandbox '${id}' is deleted`);
    const out: Partial<SandboxRecord> = {};
    if (patch.network) {
      // Fields not given keep their value: `{"allow": [...]}` alone keeps the mode.
      const merged = { ...current.network, ...patch.network };
      if (patch.network.egress === "none" && patch.network.allow === undefined) merged.allow = [];
      out.network = resolveNetwork(merged, this.d.runtime.egressModes);
      if (LIVE_STATES.includes(current.state)) await this.d.runtime.setNetworkPolicy(id, out.network);
      void this.d.events.append(id, "network", { ...out.network }).catch(() => {});
    }
    if (patch.labels) out.labels = patch.labels;
    if (patch.idle !== undefined) out.idle = patch.idle;
    if (patch.timeoutSeconds !== undefined) {
      out.timeoutSeconds = resolveTimeout(this.d.config, patch.timeoutSeconds || undefined);
      if (patch.timeoutSeconds === 0) out.timeoutSeconds = null;
      out.expiresAt = expiryOf(current.createdAt, out.timeoutSeconds);
    }
    const next = await this.d.store.updateSandbox(id, out);
    if (!next) throw new NotFoundError("sandbox", id);
    return next;
  }

  /** Pushes the expiry out by `seconds` from now or from the current expiry, whichever is later. */
  async extend(tenantId: string, id: string, seconds: number): Promise<SandboxRecord> {
    const s = await this.get(tenantId, id);
    if (!LIVE_STATES.includes(s.state)) throw new ConflictError(`sandbox '${id}' is ${s.state}`);
    const base = Math.max(Date.now(), s.expiresAt ? Date.parse(s.expiresAt) : Date.now());
    const expiresAt = new Date(base + seconds * 1000);
    const lifetime = Math.ceil((expiresAt.getTime() - Date.parse(s.createdAt)) / 1000);
    const max = this.d.config.maxTimeoutSeconds;
    if (lifetime > max)
      throw new ConflictError(`the sandbox may live at most ${max} s (${SETTINGS.maxTimeoutSeconds.env})`, {
        max,
      });
    const next = await this.d.store.updateSandbox(id, {
      expiresAt: expiresAt.toISOString(),
      timeoutSeconds: lifetime,
    });
    return next ?? s;
  }

  /** Deletes the tenant's sandbox; idempotent for one already deleted. */
  async remove(tenantId: string, id: string): Promise<void> {
    await this.get(tenantId, id);
    await this.finish(id, "deleted", null, "deleted by request");
  }

  /**
   * Ends a sandbox: destroys its runtime resources and records the final state. Used by delete,
   * timeouts, the reaper and recovery (`onlyIf`: what must still hold of the record under the lock). A failed destroy leaves the sandbox `failed` so that the
   * next start's orphan sweep retries it.
   */
  finish(
    id: string,
    state: "deleted" | "failed",
    reason: string | null,
    why: string,
    onlyIf?: (current: SandboxRecord) => boolean,
  ): Promise<void> {
    return this.lock.run(id, () => this.finishLocked(id, state, reason, why, onlyIf));
  }

  /**
   * The sandbox's record once no lifecycle change of it is under way (waits for its lock): a
   * process that died because its sandbox is being hibernated or deleted sees the outcome.
   */
  settled(id: string): Promise<SandboxRecord | null> {
    return this.lock.run(id, () => this.d.store.getSandbox(id));
  }

  /**
   * Fails a running sandbox whose processes are gone (the reaper's health check). The runtime is
   * asked again under the sandbox's lock: what the caller saw may be stale, since a hibernate and
   * a wake can both run between its look and this call (a woken sandbox was lost that way).
   * Answers whether the sandbox was failed.
   */
  failIfDead(id: string, reason: string, why: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      if ((await this.d.store.getSandbox(id))?.state !== "running") return false;
      const now = await this.d.runtime.inspect(id);
      if (now.state !== "stopped" && now.state !== "missing") return false;
      await this.finishLocked(id, "failed", reason, why);
      return true;
    });
  }

  /** `finish`, with the sandbox's lock held. */
  private async finishLocked(
    id: string,
    state: "deleted" | "failed",
    reason: string | null,
    why: string,
    onlyIf?: (current: SandboxRecord) => boolean,
  ): Promise<void> {
    const r = await this.d.store.getSandbox(id);
    if (!r || r.state === "deleted" || (r.state === "failed" && state === "failed")) return;
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

  private async markFinished(id: string, state: "deleted" | "failed", reason: string | null, why?: string) {
    const before = await this.d.store.getSandbox(id);
    await this.d.store.transaction(async (tx) => {
      await tx.updateSandbox(id, { state, ...(reason ? { failureReason: reason } : {}) });
      await recordRun(tx, id, state);
      // Its exposed ports and their tokens end with it.
      await tx.deletePorts(id);
    });
    if (before && COUNTED_STATES.includes(before.state)) this.setLiveCount(this.live - 1);
    if (state === "deleted") this.d.metrics.deletes++;
    this.clients.delete(id);
    this.activity.delete(id);
    await this.d.events.append(id, "state", {
      state,
      ...(reason ? { reason } : {}),
      ...(why ? { why } : {}),
    });
  }

  /** Records API use of a sandbox (written to the store in batches). */
  touch(id: string): void {
    this.activity.set(id, Date.now());
  }

  /** Last activity of a sandbox in ms, including what is not yet written. */
  lastActivity(r: SandboxRecord): number {
    return this.activity.get(r.id) ?? Date.parse(r.lastActivityAt);
  }

  /** Writes pending activity times to the store. */
  async flushActivity(): Promise<void> {
    for (const [id, at] of [...this.activity]) {
      await this.d.store.updateSandbox(id, { lastActivityAt: new Date(at).toISOString() });
      // A touch that came in meanwhile stays pending for the next flush.
      if (this.activity.get(id) === at) this.activity.delete(id);
    }
  }
}

/**
 * Keeps the sandbox's running stretches (what its compute is billed for) in step with its
 * state: a stretch opens when it starts running and closes when it stops, whatever the reason.
 * Called in the transaction that changes the state, so the two never disagree.
 */
async function recordRun(tx: StoreTx, id: string, state: SandboxState, at = new Date().toISOString()) {
  if (state === "running") await tx.startSandboxRun(id, at);
  else await tx.endSandboxRun(id, at);
}
