import {
  BerthError,
  COUNTED_SANDBOX_STATES,
  type Config,
  ConflictError,
  InvalidRequestError,
  KeyedLock,
  LIVE_SANDBOX_STATES,
  type Logger,
  NotFoundError,
  NotSupportedError,
  newSandboxId,
  nextSandboxState,
  notRunningError,
  type Runtime,
  SANDBOX_STATES,
  SandboxError,
  type SandboxRecord,
  type SandboxState,
  type SnapshotRecord,
  type Store,
  type VolumeMount,
} from "@berth/core";
import type { CreateSandboxBody, PatchSandboxBody } from "@berth/core/contract";
import { SupervisorClient } from "@berth/supervisor";
import type { EventHub } from "../events/event-log.js";
import type { ServerMetrics } from "../metrics.js";
import { SandboxActivity } from "./activity.js";
import { SandboxCapacity } from "./capacity.js";
import { checkTemplate, expiryOf, resolveNetwork, resolveResources, resolveTimeout } from "./create-spec.js";
import { type Ending, recordRun, SandboxEndings } from "./endings.js";
import { SandboxLifecycle, type StillTrue } from "./lifecycle.js";
import { processEnv } from "./sandbox-env.js";
import { SandboxSessions } from "./sandbox-sessions.js";
import { extendSandbox, patchSandbox } from "./settings.js";
import type { SnapshotSource, VolumeSource } from "./sources.js";
import { WakeProcesses } from "./wake-processes.js";

/** States in which a sandbox holds runtime resources (kept here for existing imports; see core). */
export const LIVE_STATES: SandboxState[] = LIVE_SANDBOX_STATES;
/** States that count against `maxSandboxes` (kept here for existing imports; see core). */
export const COUNTED_STATES: SandboxState[] = COUNTED_SANDBOX_STATES;

/**
 * What a sandbox is used for: the wake time of a request that woke it is reported in its
 * header, and with `raw` (a Fastify reply) the sandbox counts as busy until the response closes.
 */
export interface WakeReport {
  header(name: string, value: string): unknown;
  raw?: { once(event: "close", fn: () => void): unknown };
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
  private readonly lifecycle: SandboxLifecycle;
  /** Whether sandboxes are in use (API calls, holds, CPU), for idle policies. */
  readonly activity: SandboxActivity;
  /** The agent sessions in each sandbox (a delete under them must be forced). */
  readonly sessions: SandboxSessions;
  private readonly capacity: SandboxCapacity;
  private readonly endings: SandboxEndings;
  private snapshots: SnapshotSource | undefined;
  private volumes: VolumeSource | undefined;

  /** This server's replica id. */
  get replica(): string {
    return this.d.replica;
  }

  constructor(private readonly d: SandboxServiceDeps) {
    this.activity = new SandboxActivity({
      store: d.store,
      runtime: d.runtime,
      idleCpuPercent: d.config.idleCpuPercent,
    });
    this.sessions = new SandboxSessions(d.store);
    this.capacity = new SandboxCapacity(d);
    this.endings = new SandboxEndings({
      ...d,
      lock: this.lock,
      capacity: this.capacity,
      forget: (id) => {
        this.clients.delete(id);
        this.activity.forget(id);
      },
    });
    const wakeProcesses = new WakeProcesses({
      ...d,
      client: (id) => this.client(id),
      processEnv: (s, extra) => this.processEnv(s, extra),
    });
    this.lifecycle = new SandboxLifecycle({
      ...d,
      lock: this.lock,
      capacity: this.capacity,
      activity: this.activity,
      wakeProcesses,
      get: (tenantId, id) => this.get(tenantId, id),
      dropClient: (id) => this.clients.delete(id),
    });
  }

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
    this.capacity.set(n);
  }

  /** Wires in volumes. */
  useVolumes(v: VolumeSource): void {
    this.volumes = v;
  }

  /** Wires in snapshots (they need this service too). */
  useSnapshots(s: SnapshotSource): void {
    this.snapshots = s;
  }

  /**
   * Creates a sandbox. With `forkOf` (the tenant's sandbox, running, paused or hibernated) it is
   * a fork: that sandbox's template, resources and env, and a copy of its files (the runtime
   * copies its disk; drivers that cannot are never asked, see the E2B fork).
   */
  async create(tenantId: string, body: CreateSandboxBody, forkOf?: SandboxRecord): Promise<SandboxRecord> {
    const c = this.d.config;
    if (forkOf && !["running", "paused", "hibernated"].includes(forkOf.state))
      throw notRunningError(forkOf.id, forkOf.state);
    const snap =
      body.fromSnapshot && !forkOf ? await this.snapshotFor(tenantId, body.fromSnapshot) : undefined;
    const from = forkOf ? { template: forkOf.template, resources: forkOf.resources, env: forkOf.env } : snap;
    if (from && body.template !== undefined && body.template !== from.template)
      throw new InvalidRequestError(
        `the ${forkOf ? "source" : "snapshot"} is of template '${from.template}'`,
        {
          field: "template",
        },
      );
    const template = body.template ?? from?.template ?? "default";
    if (template !== "default")
      checkTemplate(template, (await this.d.runtime.getTemplate(template)) !== null);
    const resources = forkOf
      ? forkOf.resources
      : resolveResources(c, { ...from?.resources, ...body.resources });
    const volumes = body.volumes?.length ? await this.volumesFor(tenantId, body.volumes) : [];
    if (from && resources.diskMiB < from.resources.diskMiB)
      throw new InvalidRequestError(
        `resources.diskMiB must be at least the snapshot's ${from.resources.diskMiB} MiB, got ${resources.diskMiB}`,
        { field: "resources.diskMiB" },
      );
    const network = resolveNetwork(body.network, this.d.runtime.egressModes, this.d.runtime.egressDeny);
    const timeoutSeconds = resolveTimeout(c, body.timeoutSeconds);
    // A fork is what its source is: its disk holds the source's ids, root's shifted or not.
    const root = forkOf ? forkOf.runtimeInfo?.root === true : body.root === true;
    if (root) await checkRootAvailable(this.d.runtime);
    this.capacity.check();
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
    this.capacity.add(1);
    const started = performance.now();
    try {
      await this.d.store.insertSandbox(record);
    } catch (err) {
      this.capacity.add(-1);
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
          fromSnapshot: snap && this.snapshots?.path(snap.id),
          fromSandbox: forkOf?.id,
          volumes,
          ...(root ? { root: true } : {}),
        });
        const state = nextSandboxState(record.id, "starting", "started");
        const running = await this.d.store.transaction(async (tx) => {
          const next = await tx.updateSandbox(record.id, { state, runtimeInfo });
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
          this.capacity.add(-1);
          throw err;
        }
        const reason = err instanceof BerthError ? err.message : "the sandbox could not be started";
        this.d.log.error({ sandboxId: record.id, err: String(err) }, "sandbox create failed");
        await this.endings.markFinished(record.id, "failed", reason);
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
    const network = body.network
      ? resolveNetwork(body.network, this.d.runtime.egressModes, this.d.runtime.egressDeny)
      : undefined;
    return this.lock.run(id, async () => {
      const current = await this.d.store.getSandbox(id);
      if (!current) throw new NotFoundError("sandbox", id);
      if (current.state !== "running") throw notRunningError(id, current.state);
      if (network) await this.d.runtime.setNetworkPolicy(id, network);
      const now = new Date().toISOString();
      const next = await this.d.store.transaction(async (tx) => {
        const adopted = await tx.updateSandbox(id, {
          tenantId,
          createdAt: now,
          lastActivityAt: now,
          timeoutSeconds,
          expiresAt: expiryOf(now, timeoutSeconds),
          labels: body.labels ?? {},
          ...(network ? { network } : {}),
        });
        if (!adopted) throw new NotFoundError("sandbox", id);
        // Its time in the pool was the server's: the tenant's compute starts now.
        await tx.deleteSandboxRuns(id);
        await recordRun(tx, id, "running", now);
        return adopted;
      });
      return next;
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
    return { ...r, lastActivityAt: new Date(this.activity.lastActivity(r)).toISOString() };
  }

  /** The tenant's sandbox unless it is deleted or failed: those are not found (E2B, forks). */
  async live(tenantId: string, id: string): Promise<SandboxRecord> {
    const s = await this.get(tenantId, id);
    if (s.state === "deleted" || s.state === "failed") throw new NotFoundError("sandbox", id);
    return s;
  }

  /** The environment of a process started in `sandbox` (see processEnv), with the driver's variables. */
  processEnv(sandbox: SandboxRecord, extra?: Record<string, string>): Record<string, string> {
    return processEnv(sandbox, extra, this.d.runtime.addressing.processEnv(sandbox.id));
  }

  /**
   * The tenant's sandbox, running: a paused one is resumed and a hibernated one woken first
   * (the time it took goes into the `X-Berth-Wake-Ms` header of `report`). Counts as activity,
   * and as a hold until `report.raw` closes.
   */
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
    if (sandbox.state !== "running") throw notRunningError(id, sandbox.state);
    this.touch(id);
    if (report?.raw) report.raw.once("close", this.activity.hold(id));
    return { sandbox, client: this.client(id) };
  }

  /**
   * Freezes the sandbox's processes (idempotent for a paused one). `onlyIf`: what must still
   * hold of the record under the lock (the reaper decided from an older one); else nothing changes.
   */
  pause(tenantId: string, id: string, onlyIf?: StillTrue): Promise<SandboxRecord> {
    return this.lifecycle.pause(tenantId, id, onlyIf);
  }

  /** Thaws a paused sandbox (idempotent for a running one). */
  resume(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.lifecycle.resume(tenantId, id);
  }

  /** Stops every process and frees the memory; files, network, env and id stay (`onlyIf` as in `pause`). */
  hibernate(tenantId: string, id: string, onlyIf?: StillTrue): Promise<SandboxRecord> {
    return this.lifecycle.hibernate(tenantId, id, onlyIf);
  }

  /** Starts a hibernated sandbox again (idempotent for a running one). */
  wake(tenantId: string, id: string): Promise<SandboxRecord> {
    return this.lifecycle.wake(tenantId, id);
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

  /** Changes a sandbox's network policy, labels, idle policy or timeout. */
  async update(tenantId: string, id: string, patch: PatchSandboxBody): Promise<SandboxRecord> {
    return patchSandbox(this.d, await this.get(tenantId, id), patch);
  }

  /** Pushes the expiry out by `seconds` from now or from the current expiry, whichever is later. */
  async extend(tenantId: string, id: string, seconds: number): Promise<SandboxRecord> {
    return extendSandbox(this.d, await this.get(tenantId, id), seconds);
  }

  /**
   * Deletes the tenant's sandbox; idempotent for one already deleted. A sandbox that live agent
   * sessions use is a 409 `in_use` unless `force`; forced, their sessions are told it is lost.
   */
  async remove(tenantId: string, id: string, o: { force?: boolean } = {}): Promise<void> {
    const s = await this.get(tenantId, id);
    const users = s.state === "deleted" ? [] : await this.sessions.liveOn(id);
    if (users.length > 0 && !o.force)
      throw new ConflictError(
        `sandbox '${id}' is used by live sessions ${users.join(", ")}: end them first (DELETE /v1/sessions/{id}), or delete with ?force=true to end them with sandbox_lost`,
        { sessions: users },
        "in_use",
      );
    await this.finish(id, "deleted", null, "deleted by request");
    await this.sessions.lost(id, users);
  }

  /**
   * Ends a sandbox: destroys its runtime resources and records the final state (see
   * `SandboxEndings.finish`; `onlyIf`: what must still hold of the record under the lock).
   */
  finish(
    id: string,
    state: Ending,
    reason: string | null,
    why: string,
    onlyIf?: (current: SandboxRecord) => boolean,
  ): Promise<void> {
    return this.endings.finish(id, state, reason, why, onlyIf);
  }

  /**
   * The sandbox's record once no lifecycle change of it is under way (waits for its lock): a
   * process that died because its sandbox is being hibernated or deleted sees the outcome.
   */
  settled(id: string): Promise<SandboxRecord | null> {
    return this.lock.run(id, () => this.d.store.getSandbox(id));
  }

  /** Fails a running sandbox whose processes are gone, if they still are (see `SandboxEndings.failIfDead`). */
  failIfDead(id: string, reason: string, why: string): Promise<boolean> {
    return this.endings.failIfDead(id, reason, why);
  }

  /** Records API use of a sandbox (see `activity`). */
  touch(id: string): void {
    this.activity.touch(id);
  }

  /** Writes pending activity times to the store. */
  flushActivity(): Promise<void> {
    return this.activity.flush();
  }
}

/** Refuses `root: true` before anything is made when the runtime cannot give it here. */
async function checkRootAvailable(runtime: Runtime): Promise<void> {
  const reason = await runtime.rootUnavailable();
  if (reason)
    throw new BerthError("root_unavailable", `root sandboxes are not available on this host: ${reason}`, {
      field: "root",
    });
}
