import type { SDKMessage } from "@anthropic-ai/claude-agent-sdk";
import {
  type Config,
  ConflictError,
  isFinalSessionState,
  KeyedLock,
  LIVE_SESSION_STATES,
  type Logger,
  type Runtime,
  type SessionFailure,
  type SessionRecord,
  type SessionState,
  type Store,
  TurnLine,
} from "@berth/core";
import type { GatewayGrant, GatewayToken, ModelGateway } from "../gateway/gateway.js";
import type { SandboxService } from "../sandboxes/service.js";
import { agentEnv, sessionHomeOf } from "./agent-env.js";
import { AgentRun } from "./agent-run.js";
import { type PermissionRequests, toolControl } from "./permissions.js";
import type { SessionEvents } from "./session-events.js";
import { failureOfExit, failureOfResult, type TurnClues } from "./session-failure.js";
import type { SessionMeter } from "./session-meter.js";
import type { SessionOutputs } from "./session-outputs.js";
import type { SessionStates } from "./session-states.js";
import { ToolOomWatch } from "./tool-oom.js";
import type { WarmStart } from "./warm-pool.js";

/** What the live runs need: the sandboxes they run in, the gateway, and the session's record keepers. */
export interface LiveRunDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  gateway: ModelGateway;
  gatewayPort: number;
  claudePath: string;
  events: SessionEvents;
  states: SessionStates;
  meter: SessionMeter;
  permissions: PermissionRequests;
  outputs: SessionOutputs;
  log: Logger;
}

/** Besides its own directories, what a shared session's agent may change (scratch space and devices). */
const SHARED_WRITABLE = ["/tmp", "/dev", "/proc"];

/** A session's live parts in this server. */
interface Live {
  run: AgentRun;
  token: GatewayToken;
  /** The user messages: one turn at a time, the rest wait (the session is `running` meanwhile). */
  line: TurnLine;
  idleTimer?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
  /** The sandbox the process runs in. */
  sandboxId: string;
  /** What explains how the current turn ends, should it fail. */
  clues: TurnClues;
  /** The sandbox's OOM kills during the run: each reported as `tool_oom`, the count kept for an exit. */
  oom: ToolOomWatch;
  /** Ends the hold on the sandbox that keeps its idle policy off it while a turn runs or a message waits. */
  release?: () => void;
}

/** SDK messages that only come while a turn is under way (one the agent began on its own, too). */
const TURN_MESSAGES = new Set(["assistant", "user", "stream_event"]);

/**
 * The agent processes of this server's sessions: starts them (cold or on a parked process),
 * hands them the user's messages one turn at a time, stores every message they send, and moves
 * the session's state from what they do. A hybrid session's process ends after its quiet time;
 * one that ends because its sandbox was hibernated under it leaves the session hibernated, to be
 * resumed by the next message.
 */
export class LiveRuns {
  private readonly live = new Map<string, Live>();
  /** Sends, wakes and hibernations of one session never interleave. */
  private readonly turns = new KeyedLock();

  constructor(private readonly d: LiveRunDeps) {}

  /** Whether the session has an agent process in this server. */
  has(id: string): boolean {
    return this.live.has(id);
  }

  /**
   * The next user message: given to the agent now, or queued behind the turn under way. A session
   * with no agent process here (hibernated, restarted) has its sandbox woken and a process started
   * that resumes the conversation.
   */
  send(s: SessionRecord, text: string): Promise<void> {
    return this.turns.run(s.id, async () => {
      // The transcript holds what the user said, in the order it was accepted.
      await this.d.events.append(s.id, "user_message", { text });
      const live = this.live.get(s.id);
      if (live) {
        clearTimeout(live.idleTimer);
        this.give(live, text);
        await this.d.states.move(s.id, "running", { queued: live.line.queued });
        return;
      }
      await this.d.sandboxes.running(s.tenantId, s.sandboxId);
      await this.start(s, [text]);
    });
  }

  /** Stops the current turn; the next waiting message (if any) goes on. */
  async interrupt(s: SessionRecord): Promise<void> {
    const live = this.live.get(s.id);
    if (!live)
      throw new ConflictError(`session '${s.id}' has no running agent (it is ${s.state})`, {
        state: s.state,
      });
    live.clues.interrupted = true;
    await live.run.interrupt();
  }

  /** Starts the agent process with the session's first messages (or the next ones, when resuming). */
  async start(s: SessionRecord, texts: string[]): Promise<void> {
    const sandbox = await this.d.sandboxes.get(s.tenantId, s.sandboxId);
    const client = this.d.sandboxes.client(s.sandboxId);
    await client.mkdir(s.options.cwd);
    if (s.pattern === "shared") await client.mkdir(sessionHomeOf(s.id));
    const hostIp = this.d.runtime.addressing.hostAddress(s.sandboxId);
    if (!hostIp) throw new ConflictError("the sandbox has no network to reach the model gateway");
    const live = { sandboxId: s.sandboxId, clues: {}, line: new TurnLine() } as Live;
    live.token = this.d.gateway.grant(this.grantFor(s, live));
    live.run = new AgentRun({
      client,
      claudePath: this.d.claudePath,
      options: s.options,
      env: agentEnv(sandbox, {
        env: s.options.env,
        ...(s.pattern === "shared" ? { home: sessionHomeOf(s.id) } : {}),
        hostIp,
        gatewayPort: this.d.gatewayPort,
        token: live.token,
        driver: this.d.runtime.addressing.processEnv(s.sandboxId),
      }),
      resume: s.agentSessionId,
      fork: s.options.forkOf !== undefined && s.options.forkOf === s.agentSessionId,
      secret: this.d.config.anthropicApiKey,
      // Sessions sharing a sandbox run as the same user: the kernel keeps each to its own files.
      ...(s.pattern === "shared"
        ? { writable: [s.options.cwd, sessionHomeOf(s.id), ...SHARED_WRITABLE] }
        : {}),
      ...toolControl(this.d.permissions, s),
      log: this.d.log,
    });
    await this.begin(s, live, texts);
    void this.pump(s, live);
  }

  /** Starts a session on a parked process; if it refuses the claim, starts cold in the same sandbox. */
  async startWarm(s: SessionRecord, text: string, w: WarmStart): Promise<void> {
    const client = this.d.sandboxes.client(s.sandboxId);
    await client.mkdir(s.options.cwd);
    const live = { sandboxId: s.sandboxId, token: w.token, clues: {}, line: new TurnLine() } as Live;
    // The parked process's grant becomes this session's: its tenant, where usage and refusals go.
    const own = this.grantFor(s, live);
    w.grant.tenantId = own.tenantId;
    w.grant.onUsage = own.onUsage;
    w.grant.onFailure = own.onFailure;
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
    await this.begin(s, live, [text]);
    void live.run.claimed.then(
      () => this.pump(s, live),
      async (err: Error) => {
        this.d.log.warn(
          { sessionId: s.id, err: err.message },
          "a parked agent refused its session; starting cold",
        );
        if (this.live.get(s.id) !== live) return;
        const texts = [text, ...live.line.drain()];
        this.stop(s.id);
        await this.start(s, texts).catch((e: Error) =>
          this.end(s, "failed", { code: "agent_error", message: `could not start the agent: ${e.message}` }),
        );
      },
    );
  }

  /** Ends a session for good: its process stops, an ephemeral session's sandbox is deleted. */
  async end(s: SessionRecord, state: SessionState, failure: SessionFailure | null): Promise<void> {
    this.stop(s.id);
    await this.keepOutputs(s.id);
    // The sandbox goes first: a session seen as ended has nothing left running.
    if (s.pattern === "ephemeral")
      await this.d.sandboxes
        .finish(s.sandboxId, "deleted", null, "its ephemeral session ended")
        .catch(() => {});
    await this.d.meter.settled(s.id);
    await this.d.states.end(s.id, state, failure);
  }

  /**
   * The sandbox was deleted under these sessions (a forced delete): each ends `failed` with
   * `sandbox_lost`, its process stopped. One that already ended keeps how it ended.
   */
  async sandboxLost(sandboxId: string, ids: string[]): Promise<void> {
    for (const id of ids)
      await this.turns.run(id, async () => {
        const s = await this.d.store.getSession(id);
        if (!s || isFinalSessionState(s.state)) return;
        await this.end(s, "failed", {
          code: "sandbox_lost",
          message: `its sandbox '${sandboxId}' was deleted (forced) while the session was live`,
        });
      });
  }

  /** Keeps the session's workspace and transcript while its sandbox still runs (for later download, resume, fork). */
  private async keepOutputs(id: string): Promise<void> {
    try {
      const s = await this.d.store.getSession(id);
      const sandbox = s && (await this.d.store.getSandbox(s.sandboxId));
      if (!s || isFinalSessionState(s.state) || sandbox?.state !== "running") return;
      const client = this.d.sandboxes.client(sandbox.id);
      await this.d.outputs.keep(
        id,
        await this.d.outputs.take(s, client, this.d.sandboxes.processEnv(sandbox)),
      );
    } catch (err) {
      this.d.log.warn({ sessionId: id, err: String(err) }, "could not keep a session's workspace");
    }
  }

  /** Stops the session's agent process, if it has one here (its state is the caller's to set). */
  stop(id: string): void {
    const l = this.live.get(id);
    if (!l) return;
    clearTimeout(l.idleTimer);
    clearTimeout(l.deadline);
    this.rest(l);
    this.d.gateway.revoke(l.token);
    l.run.end();
    this.live.delete(id);
    this.d.permissions.endSession(id);
  }

  /** Stops every agent process (the server is closing); sessions stay as they are for `recover`. */
  close(): void {
    for (const id of [...this.live.keys()]) this.stop(id);
  }

  /** The gateway grant of a run: where its usage and the model's refusals go. */
  private grantFor(s: SessionRecord, live: Live): GatewayGrant {
    return {
      sessionId: s.id,
      sandboxId: s.sandboxId,
      tenantId: s.tenantId,
      budgetUsd: s.options.maxBudgetUsd,
      spentUsd: s.tokensUsd,
      onUsage: (u, cost) => {
        // A good answer: an earlier error was retried away.
        live.clues.model = undefined;
        this.d.meter.add(s.id, u, cost);
      },
      onFailure: (f) => {
        live.clues.model = f;
      },
    };
  }

  /** A run is registered, its deadline armed and its first messages given: the session is running. */
  private async begin(s: SessionRecord, live: Live, texts: string[]): Promise<void> {
    this.live.set(s.id, live);
    if (s.options.maxDurationSeconds) {
      const left = Date.parse(s.createdAt) + s.options.maxDurationSeconds * 1000 - Date.now();
      live.deadline = setTimeout(() => void this.timeUp(s.id), Math.max(0, left));
    }
    const oomKills = (await this.d.runtime.inspect(s.sandboxId).catch(() => undefined))?.oomKills;
    live.oom = new ToolOomWatch(this.d.runtime, s.sandboxId, oomKills);
    for (const t of texts) this.give(live, t);
    await this.d.states.move(s.id, "running", { queued: live.line.queued });
  }

  /**
   * The agent is at work (a turn runs or a message waits): its sandbox is held, so its idle
   * policy does not pause or hibernate it during a long tool call that sends no message.
   */
  private work(live: Live): void {
    live.release ??= this.d.sandboxes.activity.hold(live.sandboxId);
  }

  /** Nothing runs or waits any more: the hold ends (its idle time starts now). */
  private rest(live: Live): void {
    live.release?.();
    live.release = undefined;
  }

  /** A message to the agent now, or into the line behind the turn under way. */
  private give(live: Live, text: string): void {
    this.work(live);
    const now = live.line.offer(text);
    if (now === undefined) return;
    live.clues = {};
    live.run.send(now);
  }

  /** Stores every SDK message in order and acts on it; then handles the process's end. */
  private async pump(s: SessionRecord, live: Live): Promise<void> {
    try {
      for await (const m of live.run.messages()) {
        await this.d.events.append(s.id, "message", m as unknown as Record<string, unknown>);
        // An agent at work is activity of its sandbox (its idle policy must not take it away).
        this.d.sandboxes.touch(s.sandboxId);
        // A tool killed for memory: said before the message that follows it (the model's answer).
        const oom = await live.oom.check(m);
        if (oom) await this.d.events.append(s.id, "tool_oom", { ...oom });
        await this.onMessage(s, live, m);
      }
    } catch (err) {
      this.d.log.warn({ sessionId: s.id, err: String(err) }, "agent run ended with an error");
    }
    if (this.live.get(s.id) === live) await this.turns.run(s.id, () => this.lost(s, live));
  }

  /**
   * The process ended without being asked to. Its sandbox was hibernated under it (an idle
   * policy, an API call): the conversation is kept in the sandbox, so the session waits
   * hibernated for its next message (started again at once if messages wait). Otherwise it ends
   * if the sandbox is gone or it was ephemeral, else waits idle; either way it says why.
   * Runs under the session's turn lock.
   */
  private async lost(s: SessionRecord, live: Live): Promise<void> {
    if (this.live.get(s.id) !== live) return;
    const inTurn = live.line.busy;
    const waiting = live.line.drain();
    this.stop(s.id);
    const cur = await this.d.store.getSession(s.id);
    if (!cur || isFinalSessionState(cur.state) || cur.state === "hibernated") return;
    // A hibernate (or delete) that killed the process may still be under way: its outcome counts.
    const sandbox = await this.d.sandboxes.settled(s.sandboxId);
    if (s.pattern !== "ephemeral" && sandbox?.state === "hibernated") {
      if (inTurn)
        await this.d.states.noteFailure(s.id, {
          code: "interrupted",
          message: "the session's sandbox was hibernated during a turn; that turn's answer is lost",
        });
      await this.d.states.move(s.id, "hibernated", { reason: "its sandbox was hibernated" });
      // Messages that were waiting are not dropped: the sandbox wakes for them.
      if (waiting.length > 0)
        await this.d.sandboxes
          .running(s.tenantId, s.sandboxId)
          .then(() => this.start(cur, waiting))
          .catch((err: Error) =>
            this.d.log.warn({ sessionId: s.id, err: err.message }, "could not resume for waiting messages"),
          );
      return;
    }
    const failure = live.clues.interrupted
      ? { code: "interrupted" as const, message: "the agent process ended unexpectedly" }
      : await failureOfExit(this.d, s.sandboxId, live.oom?.oomKills, "the agent process ended unexpectedly");
    if (s.pattern === "ephemeral" || failure.code === "sandbox_lost") await this.end(cur, "failed", failure);
    else {
      await this.d.states.noteFailure(s.id, failure);
      await this.d.states.move(s.id, "idle", { reason: failure.message });
    }
  }

  private async onMessage(s: SessionRecord, live: Live, m: SDKMessage): Promise<void> {
    if (m.type === "system" && m.subtype === "init") {
      await this.d.store.updateSession(s.id, { agentSessionId: m.session_id });
      return;
    }
    if (m.type !== "result") {
      // A turn the agent began on its own (a background task's notification): it is running.
      if (!live.line.busy && TURN_MESSAGES.has(m.type)) {
        live.line.began();
        this.work(live);
        clearTimeout(live.idleTimer);
        await this.d.states.move(s.id, "running", { reason: "the agent began a turn" });
      }
      return;
    }
    await this.d.meter.settled(s.id);
    const cur = await this.d.store.getSession(s.id);
    if (!cur) return;
    const failure = m.is_error ? failureOfResult(m, live.clues) : null;
    live.clues = {};
    const next = live.line.ended();
    // Nothing runs or waits: the sandbox's idle time starts now.
    if (!live.line.busy) this.rest(live);
    // A session ended meanwhile (its deadline, a delete) keeps the reason it ended with.
    await this.d.store.updateSession(s.id, {
      turns: cur.turns + m.num_turns,
      result: m as unknown as Record<string, unknown>,
      // The last turn's outcome: a turn that succeeds clears an earlier one's failure.
      ...(isFinalSessionState(cur.state) ? {} : { failure, failureReason: failure?.message ?? null }),
    });
    if (isFinalSessionState(cur.state)) return;
    if (next !== undefined) {
      // The next waiting message gets its own turn; the session stays running.
      live.run.send(next);
      return;
    }
    if (s.pattern === "ephemeral") {
      await this.end(cur, failure ? "failed" : "completed", failure);
      return;
    }
    await this.d.states.move(s.id, "idle");
    if (s.pattern === "hybrid") {
      clearTimeout(live.idleTimer);
      live.idleTimer = setTimeout(() => void this.quiet(s.id), (s.options.idleSeconds ?? 300) * 1000);
    }
  }

  /**
   * Hybrid: no message for its idle time. The agent process ends; the sandbox hibernates unless
   * another live session uses it (then only this session's process goes). Never while a turn runs
   * or a message waits.
   */
  private quiet(id: string): Promise<void> {
    return this.turns.run(id, async () => {
      const live = this.live.get(id);
      const s = await this.d.store.getSession(id);
      if (!live || !s || s.state !== "idle" || live.line.busy) return;
      const others = (
        await this.d.store.listSessions({ sandboxId: s.sandboxId, states: [...LIVE_SESSION_STATES] })
      ).filter((o) => o.id !== id);
      this.stop(id);
      if (others.length > 0) {
        await this.d.states.move(id, "hibernated", {
          reason: `its sandbox stays running: ${others.length} other live session(s) use it`,
        });
        return;
      }
      try {
        await this.d.sandboxes.hibernate(s.tenantId, s.sandboxId);
        await this.d.states.move(id, "hibernated");
      } catch (err) {
        // It waits idle, with no process: the next message starts one.
        this.d.log.warn(
          { sessionId: id, err: String(err) },
          "could not hibernate a hybrid session's sandbox",
        );
      }
    });
  }

  private async timeUp(id: string): Promise<void> {
    const s = await this.d.store.getSession(id);
    if (!s || isFinalSessionState(s.state)) return;
    const message = `maxDurationSeconds (${s.options.maxDurationSeconds} s) reached`;
    const live = this.live.get(id);
    if (live) live.clues.deadline = message;
    await live?.run.interrupt().catch(() => {});
    await this.end(s, "failed", { code: "max_duration", message });
  }
}
