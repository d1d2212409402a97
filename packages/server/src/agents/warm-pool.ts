import {
  type AgentOptions,
  type Config,
  type Logger,
  newSessionId,
  type Runtime,
  type Store,
} from "@berth/core";
import type { GatewayGrant, GatewayToken, ModelGateway } from "../gateway/gateway.js";
import type { ServerMetrics } from "../metrics.js";
import type { SandboxService } from "../sandboxes/service.js";
import { agentEnv } from "./agent-env.js";
import { ParkedAgent } from "./agent-run.js";

/**
 * The tenant that owns pooled sandboxes until a session takes one. API keys' tenants match
 * `^[a-z0-9]`, so no caller can be this tenant or see its sandboxes.
 */
export const POOL_TENANT = "_warm-pool";

/** Where a parked `claude` waits: its own directory, never a session's working directory. */
const PARKING_DIR = "/home/user/.berth/parked";
/** How long a parked process may take to start. */
const PREWARM_TIMEOUT_MS = 60_000;
/** Pause before trying again after a spare could not be made. */
const RETRY_MS = 5_000;

/** A ready session start: a running sandbox with a parked `claude` whose gateway token is granted. */
export interface WarmStart {
  sandboxId: string;
  /** The id the session will have. */
  sessionId: string;
  token: GatewayToken;
  parked: ParkedAgent;
  /**
   * The token's grant: the session that takes this start makes it its own (its tenant, where
   * usage and failures go); until then it spends for nobody.
   */
  grant: GatewayGrant;
}

/** What the pool needs: sandboxes to park agents in, the gateway, and the options a spare is started with. */
export interface WarmPoolDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  gateway: ModelGateway;
  gatewayPort: number;
  claudePath: string;
  metrics: ServerMetrics;
  log: Logger;
  /** A session with other fixed options starts cold. */
  options: AgentOptions;
}

/**
 * Warm starts for sessions in a new sandbox (`BERTH_AGENT_WARM_POOL`): sandboxes made ahead of time,
 * each with a `claude` process already loaded and parked in it (the SDK's `prewarm()`), so a
 * session skips the sandbox create and the process start. Taken starts are replaced in the
 * background; a parked process that dies is replaced too.
 */
export class WarmPool {
  private readonly ready: WarmStart[] = [];
  /** Starts being made (closing waits for them, to remove them too). */
  private readonly making = new Set<Promise<void>>();
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly d: WarmPoolDeps) {}

  get size(): number {
    return this.d.config.agentWarmPool;
  }

  /** Removes what a previous run of this replica left in the pool, then fills it. */
  async start(): Promise<void> {
    if (!(await this.d.store.getTenant(POOL_TENANT)))
      await this.d.store
        .createTenant({ id: POOL_TENANT, name: "warm pool", createdAt: new Date().toISOString() })
        .catch(() => {});
    const left = await this.d.store.listSandboxes({
      tenantId: POOL_TENANT,
      states: ["starting", "running", "paused", "hibernated"],
    });
    for (const s of left.items)
      if (!s.replica || s.replica === this.d.sandboxes.replica)
        await this.d.sandboxes
          .finish(s.id, "deleted", null, "a warm-pool sandbox of an earlier run")
          .catch(() => {});
    this.fill();
  }

  /** A ready start, if one is parked (never waits); the pool is refilled behind it. */
  take(): WarmStart | undefined {
    const w = this.ready.shift();
    this.counted();
    this.fill();
    return w;
  }

  /** A start that could not be used: its process and sandbox go. */
  async discard(w: WarmStart): Promise<void> {
    w.parked.close();
    this.d.gateway.revoke(w.token);
    await this.d.sandboxes
      .finish(w.sandboxId, "deleted", null, "a warm start that was not used")
      .catch(() => {});
  }

  /** Stops filling and removes every parked start (the server is closing). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await Promise.all(this.making);
    await Promise.all(this.ready.splice(0).map((w) => this.discard(w)));
    this.counted();
  }

  private counted(): void {
    this.d.metrics.agentWarmReady = this.ready.length;
  }

  private fill(): void {
    while (!this.closed && this.ready.length + this.making.size < this.size) {
      const made: Promise<void> = this.make()
        .then(async (w) => {
          if (this.closed) return this.discard(w);
          this.ready.push(w);
          this.counted();
          void w.parked.exited.then(() => this.lost(w));
        })
        .catch((err: unknown) => {
          this.d.log.warn({ err: String(err) }, "could not prepare a warm agent start; trying again shortly");
          clearTimeout(this.retry);
          this.retry = setTimeout(() => this.fill(), RETRY_MS);
          this.retry.unref();
        })
        .finally(() => this.making.delete(made));
      this.making.add(made);
    }
  }

  /** A parked process ended before any session took it. */
  private lost(w: WarmStart): void {
    const i = this.ready.indexOf(w);
    if (i < 0) return;
    this.ready.splice(i, 1);
    this.counted();
    void this.discard(w);
    this.fill();
  }

  private async make(): Promise<WarmStart> {
    // No lifetime while parked: the session that takes it sets one.
    const started = performance.now();
    const sandbox = await this.d.sandboxes.create(POOL_TENANT, { timeoutSeconds: 0 });
    const sessionId = newSessionId();
    let token: GatewayToken | undefined;
    try {
      const hostIp = this.d.runtime.addressing.hostAddress(sandbox.id);
      if (!hostIp) throw new Error("agent sessions need sandbox networks (BERTH_SANDBOX_NETWORKS)");
      const client = this.d.sandboxes.client(sandbox.id);
      await client.mkdir(PARKING_DIR);
      const w = { sandboxId: sandbox.id, sessionId } as WarmStart;
      w.grant = {
        sessionId,
        sandboxId: sandbox.id,
        tenantId: POOL_TENANT,
        budgetUsd: null,
        spentUsd: 0,
        onUsage: () => {},
      };
      token = this.d.gateway.grant(w.grant);
      w.token = token;
      w.parked = await ParkedAgent.start(
        {
          client,
          claudePath: this.d.claudePath,
          options: { ...this.d.options, cwd: PARKING_DIR },
          env: agentEnv(sandbox, {
            env: {},
            hostIp,
            gatewayPort: this.d.gatewayPort,
            token,
            driver: this.d.runtime.addressing.processEnv(sandbox.id),
          }),
          resume: null,
          secret: this.d.config.anthropicApiKey,
          log: this.d.log,
        },
        PREWARM_TIMEOUT_MS,
      );
      this.d.log.info(
        { sandboxId: sandbox.id, ms: Math.round(performance.now() - started) },
        "a warm agent start is parked",
      );
      return w;
    } catch (err) {
      if (token) this.d.gateway.revoke(token);
      await this.d.sandboxes.finish(sandbox.id, "deleted", null, "its warm start failed").catch(() => {});
      throw err;
    }
  }
}
