import type { SDKMessage } from "@anthropic-ai/claude-agent-sdk";
import {
  type AgentOptions,
  BerthError,
  BudgetExceededError,
  type Config,
  ConflictError,
  FINAL_SESSION_STATES,
  InvalidRequestError,
  type Logger,
  NotFoundError,
  NotSupportedError,
  newSessionId,
  type Runtime,
  type SandboxRecord,
  SETTINGS,
  type SessionFailure,
  type SessionPattern,
  type SessionRecord,
  type SessionState,
  type SessionUsage,
  type Store,
} from "@berth/core";
import { DEMO_MODEL } from "../demo/demo-model.js";
import type { TenantBudgets } from "../gateway/budgets.js";
import type { GatewayToken, ModelGateway } from "../gateway/gateway.js";
import { noUsage } from "../gateway/prices.js";
import type { CreateSandboxBody } from "../http/schemas.js";
import type { ServerMetrics } from "../metrics.js";
import type { SandboxService } from "../sandboxes/service.js";
import { agentEnv, sessionHomeOf } from "./agent-env.js";
import { AgentRun } from "./agent-run.js";
import type { SessionEvents } from "./session-events.js";
import { failureOfExit, failureOfResult, modelUnavailable, type TurnClues } from "./session-failure.js";
import { WarmPool, type WarmStart } from "./warm-pool.js";

/** What a client asks for in `POST /v1/sessions`. */
export interface CreateSessionBody {
  prompt: string;
  pattern?: SessionPattern;
  sandbox?: { id?: string } & CreateSandboxBody;
  agent?: Partial<Omit<AgentOptions, "maxBudgetUsd" | "maxDurationSeconds">> & {
    maxBudgetUsd?: number;
    maxDurationSeconds?: number;
  };
}

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

const LIVE: SessionState[] = ["starting", "running", "idle"];
/** Besides its own directories, what a shared session's agent may change (scratch space and devices). */
const SHARED_WRITABLE = ["/tmp", "/dev", "/proc"];
/** Sandbox fields a warm-pool sandbox can still take when a session adopts it. */
const ADOPTABLE = ["labels", "timeoutSeconds", "network"];

/** A session's live parts in this server. */
interface Live {
  run: AgentRun;
  token: GatewayToken;
  idleTimer?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
  /** Session row writes, one after another. */
  writes: Promise<unknown>;
  /** What explains how the current turn ends, should it fail. */
  clues: TurnClues;
  /** The sandbox's OOM kill count when the agent started (undefined: not known). */
  oomKills?: number;
}

/**
 * Agent sessions: a Claude Agent SDK conversation per session, its `claude` process in the
 * session's sandbox, its model traffic through the gateway, every message in the event log.
 */
export class SessionService {
  private readonly live = new Map<string, Live>();
  private readonly pool: WarmPool | undefined;
  private landlock: boolean | undefined;

  constructor(private readonly d: SessionServiceDeps) {
    if (d.config.agentWarmPool > 0 && d.config.sandboxNetworks)
      this.pool = new WarmPool({ ...d, options: this.resolveOptions({}) });
  }

  /** Fills the warm pool (after `recover`), when one is configured. */
  async startPool(): Promise<void> {
    await this.pool?.start();
  }

  /** After a restart: live sessions lost their process; ephemeral ones fail, others wait (idle) for a message. */
  async recover(): Promise<void> {
    for (const s of await this.d.store.listSessions({ states: LIVE })) {
      // Replicas sharing a store recover only the sessions in their own sandboxes.
      const sandbox = await this.d.store.getSandbox(s.sandboxId);
      if (sandbox?.replica && sandbox.replica !== this.d.sandboxes.replica) continue;
      const restarted: SessionFailure = {
        code: "server_restart",
        message: "the server restarted during the session",
      };
      if (s.pattern === "ephemeral") {
        await this.finish(s, "failed", restarted);
        await this.d.sandboxes
          .finish(s.sandboxId, "deleted", null, "its ephemeral session ended")
          .catch(() => {});
      } else {
        // A turn that was under way is lost: it says why; an idle session lost nothing.
        if (s.state !== "idle")
          await this.d.store.updateSession(s.id, { failure: restarted, failureReason: restarted.message });
        await this.setState(s.id, "idle");
      }
    }
  }

  async create(tenantId: string, body: CreateSessionBody): Promise<SessionRecord> {
    // The session's clock starts with the request: the sandbox made for it is its time too.
    const createdAt = new Date().toISOString();
    // The demo model is served by the gateway itself: it needs no key.
    const unavailable = body.agent?.model === DEMO_MODEL ? null : modelUnavailable(this.d.config);
    if (unavailable) throw new BerthError("model_unavailable", 503, unavailable.message);
    const pattern = body.pattern ?? "ephemeral";
    const options = this.resolveOptions(body.agent ?? {});
    await this.refuseOverBudget(tenantId);
    if (typeof body.prompt !== "string" || body.prompt.length === 0)
      throw new InvalidRequestError("prompt must be a non-empty string", { field: "prompt" });
    const { id: sandboxId, ...sandboxBody } = body.sandbox ?? {};
    if (pattern === "shared" && !sandboxId)
      throw new InvalidRequestError("a shared session needs sandbox.id", { field: "sandbox.id" });
    if (pattern === "ephemeral" && sandboxId)
      throw new InvalidRequestError(
        "an ephemeral session makes its own sandbox: give a sandbox body, not sandbox.id",
        {
          field: "sandbox.id",
        },
      );
    const warm = sandboxId ? undefined : await this.warmStart(tenantId, sandboxBody, options);
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
      agentSessionId: null,
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
    this.d.metrics.agentStarts[warm ? "warm" : "cold"]++;
    try {
      if (warm) await this.startWarm(record, body.prompt, warm.start);
      else await this.start(record, body.prompt);
    } catch (err) {
      await this.finish(record, "failed", {
        code: "agent_error",
        message: `could not start the agent: ${(err as Error).message}`,
      });
      if (pattern === "ephemeral")
        await this.d.sandboxes.finish(sandbox.id, "deleted", null, "its session failed");
      throw err;
    }
    return record;
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

  /** The next user turn; a hibernated (or restarted) session is woken and resumed first. */
  async send(tenantId: string, id: string, text: string): Promise<void> {
    if (typeof text !== "string" || text.length === 0)
      throw new InvalidRequestError("text must be a non-empty string", { field: "text" });
    const s = await this.get(tenantId, id);
    if (FINAL_SESSION_STATES.includes(s.state))
      throw new ConflictError(`session '${id}' is ${s.state}`, { state: s.state });
    const live = this.live.get(id);
    if (live) {
      clearTimeout(live.idleTimer);
      live.clues = {};
      live.run.send(text);
      await this.setState(id, "running");
      return;
    }
    await this.d.sandboxes.running(tenantId, s.sandboxId);
    await this.start(s, text);
  }

  async interrupt(tenantId: string, id: string): Promise<void> {
    const s = await this.get(tenantId, id);
    const live = this.live.get(id);
    if (!live)
      throw new ConflictError(`session '${id}' has no running agent (it is ${s.state})`, { state: s.state });
    live.clues.interrupted = true;
    await live.run.interrupt();
  }

  /** Ends the session (its process stops); an ephemeral session's sandbox goes too. */
  async remove(tenantId: string, id: string): Promise<void> {
    const s = await this.get(tenantId, id);
    if (FINAL_SESSION_STATES.includes(s.state)) return;
    const cut = s.state === "running" || s.state === "starting";
    await this.finish(
      s,
      cut ? "cancelled" : "completed",
      cut ? { code: "interrupted", message: "the session was deleted while its agent was working" } : null,
    );
    if (s.pattern === "ephemeral")
      await this.d.sandboxes.finish(s.sandboxId, "deleted", null, "its session ended");
  }

  /** Stops every live agent (the server is closing); sessions stay as they are for `recover`. */
  async close(): Promise<void> {
    for (const [id, l] of this.live) this.stopLive(id, l);
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
      if (!/landlock/i.test((err as Error).message)) throw err;
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
    o: AgentOptions,
  ): Promise<{ start: WarmStart; sandbox: SandboxRecord } | undefined> {
    if (!this.pool) return undefined;
    const sandboxFields = Object.keys(body).filter(
      (k) => body[k as keyof CreateSandboxBody] !== undefined && !ADOPTABLE.includes(k),
    );
    const fixed =
      o.maxTurns === this.d.config.agentMaxTurnsDefault &&
      o.maxBudgetUsd === null &&
      Object.keys(o.env).length === 0 &&
      o.systemPrompt === undefined &&
      o.appendSystemPrompt === undefined &&
      o.allowedTools === undefined &&
      o.disallowedTools === undefined &&
      o.mcpServers === undefined;
    if (sandboxFields.length > 0 || !fixed) return undefined;
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

  /** Starts a session on a parked process; if it refuses the claim, starts cold in the same sandbox. */
  private async startWarm(s: SessionRecord, text: string, w: WarmStart): Promise<void> {
    const client = this.d.sandboxes.client(s.sandboxId);
    await client.mkdir(s.options.cwd);
    const live = { writes: Promise.resolve(), token: w.token, clues: {} } as Live;
    w.grant.tenantId = s.tenantId;
    w.grant.onUsage = this.meter(s.id, live);
    w.grant.onFailure = (f) => {
      live.clues.model = f;
    };
    live.run = new AgentRun(
      {
        client,
        claudePath: this.d.claudePath,
        options: s.options,
        env: {},
        resume: null,
        secret: this.d.config.anthropicApiKey,
        log: this.d.log,
      },
      w.parked,
    );
    this.live.set(s.id, live);
    this.armDeadline(s, live);
    live.oomKills = await this.oomKills(s.sandboxId);
    live.run.send(text);
    await this.setState(s.id, "running");
    void live.run.claimed.then(
      () => this.pump(s, live),
      async (err: Error) => {
        this.d.log.warn(
          { sessionId: s.id, err: err.message },
          "a parked agent refused its session; starting cold",
        );
        if (this.live.get(s.id) !== live) return;
        this.stopLive(s.id, live);
        await this.start(s, text).catch((e: Error) =>
          this.end(s, "failed", { code: "agent_error", message: `could not start the agent: ${e.message}` }),
        );
      },
    );
  }

  /** Where the gateway's usage reports for a session go: its row, one write after another. */
  private meter(id: string, live: Live): (u: SessionUsage, cost: number) => void {
    return (u, cost) => {
      // A good answer: an earlier error was retried away.
      live.clues.model = undefined;
      live.writes = live.writes.then(() => this.addUsage(id, u, cost)).catch(() => {});
    };
  }

  private armDeadline(s: SessionRecord, live: Live): void {
    if (!s.options.maxDurationSeconds) return;
    const left = Date.parse(s.createdAt) + s.options.maxDurationSeconds * 1000 - Date.now();
    live.deadline = setTimeout(() => void this.timeUp(s.id), Math.max(0, left));
  }

  private resolveOptions(a: NonNullable<CreateSessionBody["agent"]>): AgentOptions {
    const c = this.d.config;
    const maxTurns = a.maxTurns ?? c.agentMaxTurnsDefault;
    if (!Number.isInteger(maxTurns) || maxTurns < 1 || maxTurns > c.agentMaxTurns)
      throw new InvalidRequestError(
        `agent.maxTurns must be 1..${c.agentMaxTurns} (${SETTINGS.agentMaxTurns.env}), got ${maxTurns}`,
        { field: "agent.maxTurns", max: c.agentMaxTurns },
      );
    for (const f of ["maxBudgetUsd", "maxDurationSeconds", "idleSeconds"] as const) {
      const v = a[f];
      if (v !== undefined && (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)))
        throw new InvalidRequestError(`agent.${f} must be a positive number`, { field: `agent.${f}` });
    }
    if (a.cwd !== undefined && (typeof a.cwd !== "string" || !a.cwd.startsWith("/")))
      throw new InvalidRequestError("agent.cwd must be an absolute path", { field: "agent.cwd" });
    return {
      ...a,
      maxTurns,
      maxBudgetUsd: a.maxBudgetUsd ?? null,
      maxDurationSeconds: a.maxDurationSeconds ?? null,
      cwd: a.cwd ?? "/home/user",
      env: a.env ?? {},
      idleSeconds: a.idleSeconds ?? c.agentIdleSeconds,
    };
  }

  /** Starts the agent process for a session with its first (or next, when resuming) turn. */
  private async start(s: SessionRecord, text: string): Promise<void> {
    const sandbox = await this.d.sandboxes.get(s.tenantId, s.sandboxId);
    const client = this.d.sandboxes.client(s.sandboxId);
    await client.mkdir(s.options.cwd);
    if (s.pattern === "shared") await client.mkdir(sessionHomeOf(s.id));
    const hostIp = this.d.runtime.addressing.hostAddress(s.sandboxId);
    if (!hostIp) throw new ConflictError("the sandbox has no network to reach the model gateway");
    const live = { writes: Promise.resolve(), clues: {} } as Live;
    const token = this.d.gateway.grant({
      sessionId: s.id,
      sandboxId: s.sandboxId,
      tenantId: s.tenantId,
      budgetUsd: s.options.maxBudgetUsd,
      spentUsd: s.tokensUsd,
      onUsage: this.meter(s.id, live),
      onFailure: (f) => {
        live.clues.model = f;
      },
    });
    live.token = token;
    live.run = new AgentRun({
      client,
      claudePath: this.d.claudePath,
      options: s.options,
      env: agentEnv(sandbox, {
        env: s.options.env,
        ...(s.pattern === "shared" ? { home: sessionHomeOf(s.id) } : {}),
        hostIp,
        gatewayPort: this.d.gatewayPort,
        token,
        driver: this.d.runtime.addressing.processEnv(s.sandboxId),
      }),
      resume: s.agentSessionId,
      secret: this.d.config.anthropicApiKey,
      // Sessions sharing a sandbox run as the same user: the kernel keeps each to its own files.
      ...(s.pattern === "shared"
        ? { writable: [s.options.cwd, sessionHomeOf(s.id), ...SHARED_WRITABLE] }
        : {}),
      log: this.d.log,
    });
    this.live.set(s.id, live);
    this.armDeadline(s, live);
    live.oomKills = await this.oomKills(s.sandboxId);
    live.run.send(text);
    await this.setState(s.id, "running");
    void this.pump(s, live);
  }

  /** Stores every SDK message in order and acts on results. */
  private async pump(s: SessionRecord, live: Live): Promise<void> {
    try {
      for await (const m of live.run.messages()) {
        await this.d.events.append(s.id, "message", m as unknown as Record<string, unknown>);
        await this.onMessage(s, live, m);
      }
    } catch (err) {
      this.d.log.warn({ sessionId: s.id, err: String(err) }, "agent run ended with an error");
      const cur = await this.d.store.getSession(s.id);
      if (this.live.get(s.id) === live && cur && !FINAL_SESSION_STATES.includes(cur.state))
        await this.end(
          cur,
          "failed",
          await this.exitFailure(s, live, `the agent stopped: ${(err as Error).message}`),
        );
      return;
    }
    // The process ended without being asked to (it crashed or was killed): the session ends if its
    // sandbox is gone or it was ephemeral, else it waits (idle) for a message; either way it says why.
    if (this.live.get(s.id) === live) {
      this.stopLive(s.id, live);
      const cur = await this.d.store.getSession(s.id);
      if (!cur || FINAL_SESSION_STATES.includes(cur.state) || cur.state === "hibernated") return;
      const failure = await this.exitFailure(s, live, "the agent process ended unexpectedly");
      if (s.pattern === "ephemeral" || failure.code === "sandbox_lost")
        await this.end(cur, "failed", failure);
      else {
        await this.d.store.updateSession(s.id, { failure, failureReason: failure.message });
        await this.setState(s.id, "idle");
      }
    }
  }

  /** Why an agent process nobody stopped ended (an interrupt in flight counts as one). */
  private async exitFailure(s: SessionRecord, live: Live, why: string): Promise<SessionFailure> {
    if (live.clues.interrupted) return { code: "interrupted", message: why };
    return failureOfExit(this.d, s.sandboxId, live.oomKills, why);
  }

  /** The sandbox's OOM kill count now (undefined when the runtime cannot say). */
  private async oomKills(sandboxId: string): Promise<number | undefined> {
    return (await this.d.runtime.inspect(sandboxId).catch(() => undefined))?.oomKills;
  }

  private async onMessage(s: SessionRecord, live: Live, m: SDKMessage): Promise<void> {
    if (m.type === "system" && m.subtype === "init") {
      await this.d.store.updateSession(s.id, { agentSessionId: m.session_id });
      return;
    }
    if (m.type !== "result") return;
    await live.writes;
    const cur = await this.d.store.getSession(s.id);
    if (!cur) return;
    const failure = m.is_error ? failureOfResult(m, live.clues) : null;
    live.clues = {};
    // A session ended meanwhile (its deadline, a delete) keeps the reason it ended with.
    if (FINAL_SESSION_STATES.includes(cur.state)) {
      await this.d.store.updateSession(s.id, {
        turns: cur.turns + m.num_turns,
        result: m as unknown as Record<string, unknown>,
      });
      return;
    }
    await this.d.store.updateSession(s.id, {
      turns: cur.turns + m.num_turns,
      result: m as unknown as Record<string, unknown>,
      // The last turn's outcome: a turn that succeeds clears an earlier one's failure.
      failure,
      failureReason: failure?.message ?? null,
    });
    if (s.pattern === "ephemeral") {
      await this.end(cur, failure ? "failed" : "completed", failure);
      return;
    }
    await this.setState(s.id, "idle");
    if (s.pattern === "hybrid") {
      clearTimeout(live.idleTimer);
      live.idleTimer = setTimeout(() => void this.hibernate(s.id), (s.options.idleSeconds ?? 300) * 1000);
    }
  }

  /** Hybrid: no message for a while; the agent process ends and the sandbox hibernates. */
  private async hibernate(id: string): Promise<void> {
    const live = this.live.get(id);
    const s = await this.d.store.getSession(id);
    if (!live || !s || s.state !== "idle") return;
    this.stopLive(id, live);
    try {
      await this.d.sandboxes.hibernate(s.tenantId, s.sandboxId);
      await this.setState(id, "hibernated");
    } catch (err) {
      this.d.log.warn({ sessionId: id, err: String(err) }, "could not hibernate a hybrid session's sandbox");
      await this.setState(id, "idle");
    }
  }

  private async timeUp(id: string): Promise<void> {
    const s = await this.d.store.getSession(id);
    if (!s || FINAL_SESSION_STATES.includes(s.state)) return;
    const message = `maxDurationSeconds (${s.options.maxDurationSeconds} s) reached`;
    const live = this.live.get(id);
    if (live) live.clues.deadline = message;
    await live?.run.interrupt().catch(() => {});
    await this.end(s, "failed", { code: "max_duration", message });
  }

  /** Ends a session for good; an ephemeral session's sandbox is deleted. */
  private async end(s: SessionRecord, state: SessionState, failure: SessionFailure | null): Promise<void> {
    const live = this.live.get(s.id);
    if (live) this.stopLive(s.id, live);
    // The sandbox goes first: a session seen as ended has nothing left running.
    if (s.pattern === "ephemeral")
      await this.d.sandboxes
        .finish(s.sandboxId, "deleted", null, "its ephemeral session ended")
        .catch(() => {});
    await this.finish(s, state, failure);
  }

  /** Records the end of a session; `failure` says why it failed or was cancelled (null: it completed). */
  private async finish(s: SessionRecord, state: SessionState, failure: SessionFailure | null): Promise<void> {
    const live = this.live.get(s.id);
    if (live) this.stopLive(s.id, live);
    await this.d.store.updateSession(s.id, {
      state,
      endedAt: new Date().toISOString(),
      ...(failure ? { failure, failureReason: failure.message } : {}),
    });
    await this.d.events.append(s.id, "state", {
      state,
      ...(failure ? { reason: failure.message, failure } : {}),
    });
  }

  private stopLive(id: string, l: Live): void {
    clearTimeout(l.idleTimer);
    clearTimeout(l.deadline);
    this.d.gateway.revoke(l.token);
    l.run.end();
    if (this.live.get(id) === l) this.live.delete(id);
  }

  private async setState(id: string, state: SessionState): Promise<void> {
    const cur = await this.d.store.getSession(id);
    if (!cur || cur.state === state || FINAL_SESSION_STATES.includes(cur.state)) return;
    await this.d.store.updateSession(id, { state });
    await this.d.events.append(id, "state", { state, from: cur.state });
  }

  private async addUsage(id: string, u: SessionUsage, cost: number): Promise<void> {
    const cur = await this.d.store.getSession(id);
    if (!cur) return;
    await this.d.store.updateSession(id, {
      usage: {
        inputTokens: cur.usage.inputTokens + u.inputTokens,
        outputTokens: cur.usage.outputTokens + u.outputTokens,
        cacheReadTokens: cur.usage.cacheReadTokens + u.cacheReadTokens,
        cacheCreationTokens: cur.usage.cacheCreationTokens + u.cacheCreationTokens,
      },
      tokensUsd: cur.tokensUsd + cost,
    });
  }
}
