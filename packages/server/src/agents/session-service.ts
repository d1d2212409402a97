import {
  BerthError,
  BudgetExceededError,
  type Config,
  ConflictError,
  InvalidRequestError,
  isFinalSessionState,
  LIVE_SESSION_STATES,
  type Logger,
  NotFoundError,
  NotSupportedError,
  newSessionId,
  type Runtime,
  type SandboxRecord,
  type SessionFailure,
  type SessionRecord,
  type SessionState,
  type Store,
} from "@berth/core";
import type { CreateSandboxBody } from "@berth/core/contract";
import { launchFailureOf } from "@berth/supervisor";
import { DEMO_MODEL } from "../demo/demo-model.js";
import type { TenantBudgets } from "../gateway/budgets.js";
import type { ModelGateway } from "../gateway/gateway.js";
import { noUsage } from "../gateway/prices.js";
import type { ServerMetrics } from "../metrics.js";
import type { SandboxService } from "../sandboxes/service.js";
import { LiveRuns } from "./live-runs.js";
import { type PermissionAnswer, PermissionRequests } from "./permissions.js";
import type { SessionEvents } from "./session-events.js";
import { modelUnavailable } from "./session-failure.js";
import { SessionMeter } from "./session-meter.js";
import {
  agentBodyOf,
  type CreateSessionBody,
  resolveAgentOptions,
  takesWarmStart,
} from "./session-options.js";
import { type Origin, originOf } from "./session-origin.js";
import { SessionOutputs } from "./session-outputs.js";
import { inputPath, seedSandbox } from "./session-seed.js";
import { skillFiles } from "./session-skills.js";
import { SessionStates } from "./session-states.js";
import { WarmPool, type WarmStart } from "./warm-pool.js";
import { SessionWebhooks } from "./webhooks/session-webhooks.js";

export type { CreateSessionBody } from "./session-options.js";

export interface SessionServiceDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  gateway: ModelGateway;
  gatewayPort: number;
  tenantBudgets: TenantBudgets;
  claudePath: string;
  events: SessionEvents;
  metrics: ServerMetrics;
  log: Logger;
}

/** How often outputs kept past their time are removed. */
const SWEEP_MS = 10 * 60_000;

/** Sandbox fields a warm-pool sandbox can still take when a session adopts it. */
const ADOPTABLE = ["labels", "timeoutSeconds", "network"];

/**
 * Agent sessions' lifecycle as the API sees it: create (cold or warm), get, list, messages,
 * interrupt, delete, and recovery after a restart. The agent processes are `LiveRuns`'; state
 * moves go through `SessionStates`, spend through `SessionMeter`.
 */
export class SessionService {
  private readonly pool: WarmPool | undefined;
  private readonly states: SessionStates;
  private readonly runs: LiveRuns;
  private readonly permissions: PermissionRequests;
  private readonly outputs: SessionOutputs;
  private landlock: boolean | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly unlisten: () => void;
  private readonly webhooks: SessionWebhooks;

  constructor(private readonly d: SessionServiceDeps) {
    this.states = new SessionStates(d);
    this.outputs = new SessionOutputs({
      dataDir: d.config.dataDir,
      keepSeconds: d.config.sessionOutputsSeconds,
      maxBytes: d.config.sessionOutputsMaxMib * 1024 * 1024,
      log: d.log,
    });
    this.permissions = new PermissionRequests({
      events: d.events,
      timeoutMs: d.config.agentPermissionTimeoutSeconds * 1000,
    });
    this.runs = new LiveRuns({
      ...d,
      states: this.states,
      meter: new SessionMeter(d.store),
      permissions: this.permissions,
      outputs: this.outputs,
    });
    this.webhooks = new SessionWebhooks(d);
    this.webhooks.start();
    // A forced delete of a sandbox ends the live sessions in it (the sandbox side tells us which).
    this.unlisten = d.sandboxes.sessions.onLost((sandboxId, ids) => this.runs.sandboxLost(sandboxId, ids));
    if (d.config.agentWarmPool > 0 && d.config.sandboxNetworks)
      this.pool = new WarmPool({ ...d, options: resolveAgentOptions(d.config, {}) });
  }

  /** Fills the warm pool (after `recover`), when one is configured; removes outputs kept too long. */
  async startPool(): Promise<void> {
    await this.outputs.sweep();
    this.sweeper = setInterval(() => void this.outputs.sweep(), SWEEP_MS);
    this.sweeper.unref();
    await this.pool?.start();
  }

  /** After a restart: live sessions lost their process; ephemeral ones fail, others wait (idle) for a message. */
  async recover(): Promise<void> {
    for (const s of await this.d.store.listSessions({ states: [...LIVE_SESSION_STATES] })) {
      // Replicas sharing a store recover only the sessions in their own sandboxes.
      const sandbox = await this.d.store.getSandbox(s.sandboxId);
      if (sandbox?.replica && sandbox.replica !== this.d.sandboxes.replica) continue;
      const restarted: SessionFailure = {
        code: "server_restart",
        message: "the server restarted during the session",
      };
      if (s.pattern === "ephemeral") {
        await this.runs.end(s, "failed", restarted);
        continue;
      }
      // A turn that was under way is lost: it says why; an idle session lost nothing.
      if (s.state !== "idle") await this.states.noteFailure(s.id, restarted);
      await this.states.move(s.id, "idle", { reason: "the server restarted" });
    }
  }

  /**
   * A new session. With `resumeFrom` it continues an ended session's conversation (its kept
   * transcript and, in a new sandbox, its kept workspace); `origin` is how `fork` passes its source.
   */
  async create(
    tenantId: string,
    body: CreateSessionBody,
    origin?: Origin,
  ): Promise<SessionRecord & { webhookSecret?: string }> {
    // The session's clock starts with the request: the sandbox made for it is its time too.
    const createdAt = new Date().toISOString();
    // The demo model is served by the gateway itself: it needs no key.
    const unavailable = body.agent?.model === DEMO_MODEL ? null : modelUnavailable(this.d.config);
    if (unavailable) throw new BerthError("model_unavailable", unavailable.message);
    const pattern = body.pattern ?? "ephemeral";
    origin ??= body.resumeFrom ? await this.resumable(tenantId, body.resumeFrom) : undefined;
    const options = resolveAgentOptions(
      this.d.config,
      body.agent ?? (origin ? agentBodyOf(origin.source.options) : {}),
    );
    if (origin?.fork) options.forkOf = origin.source.agentSessionId ?? undefined;
    for (const [i, f] of (body.files ?? []).entries()) inputPath(options.cwd, f.path, `files[${i}].path`);
    // Uploaded skills are input files in the project's .claude/skills, and turn the Skill tool on.
    const skills = body.skills ? skillFiles(body.skills, options) : [];
    if (body.skills) options.skills ??= "all";
    const files = [...(body.files ?? []), ...skills];
    const seeded = origin !== undefined || files.length > 0 || body.archive !== undefined;
    await this.refuseOverBudget(tenantId);
    // Checked before anything is made: a refused receiver leaves nothing behind.
    const webhooks = this.webhooks.plan(body.webhooks);
    const { id: sandboxId, ...sandboxBody }: { id?: string } & CreateSandboxBody = body.sandbox ?? {};
    if (pattern === "shared" && !sandboxId)
      throw new InvalidRequestError("a shared session needs sandbox.id", { field: "sandbox.id" });
    if (pattern === "ephemeral" && sandboxId)
      throw new InvalidRequestError(
        "an ephemeral session makes its own sandbox: give a sandbox body, not sandbox.id",
        { field: "sandbox.id" },
      );
    const warm = sandboxId || seeded ? undefined : await this.warmStart(tenantId, sandboxBody, options);
    const sandbox =
      warm?.sandbox ??
      (sandboxId
        ? (await this.d.sandboxes.running(tenantId, sandboxId)).sandbox
        : await this.d.sandboxes.create(tenantId, sandboxBody));
    const id = warm?.start.sessionId ?? newSessionId();
    if (pattern === "shared") {
      options.cwd = `/home/user/work/${id}`;
      if (!(await this.canConfine(sandbox.id)))
        throw new NotSupportedError(
          "shared sessions need Landlock (Linux 5.13 or newer with landlock among its LSMs) to keep each session to its own files",
        );
    }
    if (!this.d.runtime.addressing.hostAddress(sandbox.id)) {
      if (!sandboxId)
        await this.d.sandboxes.finish(sandbox.id, "deleted", null, "its session could not start");
      throw new ConflictError(
        "agent sessions need a sandbox network to reach the model gateway (BERTH_SANDBOX_NETWORKS on the local runtime; egress other than `none` on Docker; BERTH_K8S_GATEWAY_ADDRESS on Kubernetes)",
      );
    }
    const record: SessionRecord = {
      id,
      tenantId,
      sandboxId: sandbox.id,
      pattern,
      state: "starting",
      // A resumed or forked session continues its source's conversation.
      agentSessionId: origin?.source.agentSessionId ?? null,
      prompt: body.prompt,
      webhooks: webhooks?.record ?? null,
      options,
      turns: 0,
      usage: noUsage(),
      tokensUsd: 0,
      result: null,
      failureReason: null,
      failure: null,
      createdAt,
      updatedAt: createdAt,
      endedAt: null,
    };
    await this.d.store.insertSession(record);
    await this.d.events.append(id, "state", { state: "starting", warm: warm !== undefined });
    await this.d.events.append(id, "user_message", { text: body.prompt });
    this.d.metrics.agentStarts[warm ? "warm" : "cold"]++;
    try {
      if (seeded)
        await seedSandbox(this.d.sandboxes.client(sandbox.id), this.d.sandboxes.processEnv(sandbox), record, {
          ...(files.length ? { files } : {}),
          ...(body.archive ? { archive: body.archive } : {}),
          ...(origin
            ? {
                kept: {
                  // The source's own sandbox still has its files.
                  workspace: sandbox.id === origin.source.sandboxId ? null : origin.kept.workspace,
                  transcript: origin.kept.transcript,
                },
              }
            : {}),
        });
      if (warm) await this.runs.startWarm(record, body.prompt, warm.start);
      else await this.runs.start(record, [body.prompt]);
    } catch (err) {
      // An ephemeral session's sandbox goes with it.
      await this.runs.end(record, "failed", {
        code: "agent_error",
        message: `could not start the agent: ${(err as Error).message}`,
      });
      throw err;
    }
    const made = (await this.d.store.getSession(id)) ?? record;
    // The key is shown this once; the store keeps it sealed.
    return webhooks ? { ...made, webhookSecret: webhooks.secret } : made;
  }

  async get(tenantId: string, id: string): Promise<SessionRecord> {
    const s = await this.d.store.getSession(id);
    if (!s || s.tenantId !== tenantId) throw new NotFoundError("session", id);
    return s;
  }

  list(tenantId: string, q: { state?: SessionState; sandboxId?: string }): Promise<SessionRecord[]> {
    return this.d.store.listSessions({
      tenantId,
      states: q.state ? [q.state] : undefined,
      sandboxId: q.sandboxId,
    });
  }

  /**
   * The next user message: answered after every earlier one, each in its own turn (the session is
   * `running` until the last is answered). A hibernated (or restarted) session is woken and resumed.
   */
  async send(tenantId: string, id: string, text: string): Promise<void> {
    const s = await this.get(tenantId, id);
    if (isFinalSessionState(s.state))
      throw new ConflictError(`session '${id}' is ${s.state}`, { state: s.state });
    await this.runs.send(s, text);
  }

  async interrupt(tenantId: string, id: string): Promise<void> {
    await this.runs.interrupt(await this.get(tenantId, id));
  }

  /**
   * `count` new sessions, each in a new sandbox with a copy of the source's working directory and
   * its conversation so far (the SDK's `forkSession`: each goes on as a conversation of its own).
   * The source may be live (its files and transcript as they are now) or ended (as kept).
   */
  async fork(
    tenantId: string,
    id: string,
    f: { count: number; prompt: string; pattern?: "ephemeral" | "long-running" | "hybrid" },
  ): Promise<SessionRecord[]> {
    const origin = await originOf(this.originDeps(), await this.get(tenantId, id), "fork");
    const made: SessionRecord[] = [];
    for (let i = 0; i < f.count; i++)
      made.push(
        await this.create(tenantId, { prompt: f.prompt, pattern: f.pattern ?? "long-running" }, origin),
      );
    return made;
  }

  /**
   * A tar of the session's working directory: taken now while its sandbox runs, else the one kept
   * when it ended (for `BERTH_SESSION_OUTPUTS_SECONDS`). 404 when there is none.
   */
  async workspace(
    tenantId: string,
    id: string,
  ): Promise<{ size?: number; stream: NodeJS.ReadableStream | Buffer }> {
    const s = await this.get(tenantId, id);
    const sandbox = await this.d.store.getSandbox(s.sandboxId);
    if (!isFinalSessionState(s.state) && sandbox?.state === "running") {
      const now = await this.outputs.take(
        { ...s, agentSessionId: null },
        this.d.sandboxes.client(sandbox.id),
        this.d.sandboxes.processEnv(sandbox),
      );
      if (now.workspace) return { size: now.workspace.length, stream: now.workspace };
    }
    const kept = await this.outputs.workspace(id);
    if (!kept) throw new NotFoundError("workspace of session", id);
    return kept;
  }

  /** An ended session whose conversation a new one can continue (409 otherwise). */
  private async resumable(tenantId: string, id: string): Promise<Origin> {
    return originOf(this.originDeps(), await this.get(tenantId, id), "resume");
  }

  private originDeps() {
    return { store: this.d.store, sandboxes: this.d.sandboxes, outputs: this.outputs };
  }

  /** The client's answer to one of the session's permission requests (404 unknown, 409 already settled). */
  async answerPermission(
    tenantId: string,
    id: string,
    requestId: string,
    a: PermissionAnswer,
  ): Promise<void> {
    await this.get(tenantId, id);
    this.permissions.answer(id, requestId, a);
  }

  /** Ends the session (its process stops); an ephemeral session's sandbox goes too. */
  async remove(tenantId: string, id: string): Promise<void> {
    const s = await this.get(tenantId, id);
    if (isFinalSessionState(s.state)) return;
    const cut = s.state === "running" || s.state === "starting";
    await this.runs.end(
      s,
      cut ? "cancelled" : "completed",
      cut ? { code: "interrupted", message: "the session was deleted while its agent was working" } : null,
    );
  }

  /** Stops every live agent (the server is closing); sessions stay as they are for `recover`. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.unlisten();
    this.webhooks.close();
    this.d.events.shutdown();
    this.runs.close();
    await this.pool?.close();
  }

  /** A tenant whose monthly model budget is spent starts no session (402 budget_exceeded). */
  private async refuseOverBudget(tenantId: string): Promise<void> {
    const b = await this.d.tenantBudgets.status(tenantId);
    if (b.monthlyBudgetUsd !== null && b.spentUsd >= b.monthlyBudgetUsd)
      throw new BudgetExceededError(
        `the tenant's monthly model budget of USD ${b.monthlyBudgetUsd} is spent (USD ${b.spentUsd.toFixed(4)} in ${b.month}); an admin can raise it with PATCH /v1/tenants/${tenantId}`,
        { monthlyBudgetUsd: b.monthlyBudgetUsd, spentUsd: b.spentUsd, month: b.month },
      );
  }

  /** Whether berth-init can confine a process with Landlock on this host (known after one try). */
  private async canConfine(sandboxId: string): Promise<boolean> {
    if (this.landlock !== undefined) return this.landlock;
    try {
      const p = await this.d.sandboxes.client(sandboxId).exec({ cmd: ["true"], env: {}, writable: ["/tmp"] });
      await new Promise((r) => p.once("exit", r));
      this.landlock = true;
    } catch (err) {
      if (launchFailureOf(err)?.phase !== "landlock") throw err;
      this.d.log.warn({ err: String(err) }, "no Landlock on this host: shared sessions are refused");
      this.landlock = false;
    }
    return this.landlock;
  }

  /**
   * A parked start from the warm pool, handed to the tenant, when a session in a new sandbox
   * asks for nothing a parked process cannot take: its fixed options are the server defaults,
   * its sandbox the default one (labels, lifetime and network policy can still be set).
   * Otherwise undefined.
   */
  private async warmStart(
    tenantId: string,
    body: CreateSandboxBody,
    o: ReturnType<typeof resolveAgentOptions>,
  ): Promise<{ start: WarmStart; sandbox: SandboxRecord } | undefined> {
    if (!this.pool) return undefined;
    const sandboxFields = Object.keys(body).filter(
      (k) => body[k as keyof CreateSandboxBody] !== undefined && !ADOPTABLE.includes(k),
    );
    if (sandboxFields.length > 0 || !takesWarmStart(this.d.config, o)) return undefined;
    const start = this.pool.take();
    if (!start) return undefined;
    try {
      return { start, sandbox: await this.d.sandboxes.adopt(start.sandboxId, tenantId, body) };
    } catch (err) {
      await this.pool.discard(start);
      // A bad field is the caller's to fix; anything else: start cold.
      if (err instanceof InvalidRequestError) throw err;
      this.d.log.warn({ err: String(err) }, "a warm start could not be handed over; starting cold");
      return undefined;
    }
  }
}
