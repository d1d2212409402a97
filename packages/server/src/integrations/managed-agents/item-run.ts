import type { Logger, ManagedAgentRecord, ManagedItemState, Runtime, Store } from "@berth/core";
import type { ProcessStream } from "@berth/supervisor";
import { MANAGED_AGENTS_PREFIX, type ManagedAgentsRelay } from "../../gateway/managed-agents-relay.js";
import type { SandboxService } from "../../sandboxes/service.js";
import { stopWorkItem } from "./control-plane.js";
import type { WorkerInstall } from "./worker-install.js";

/** How much of the worker's stderr is kept for an item's `failure`. */
const STDERR_TAIL = 4 * 1024;
/** How long a worker asked to stop (SIGTERM: it force-stops its item) has before it is killed. */
const STOP_GRACE_MS = 10_000;
/** Where the worker runs: the sandbox user's working directory. */
const WORKDIR = "/workspace";

/** What a work item's run needs from the server. */
export interface ItemRunDeps {
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  relay: ManagedAgentsRelay;
  gatewayPort: number;
  worker: WorkerInstall;
  log: Logger;
}

/** A claimed work item as the host poller hands it over. */
export interface ClaimedItem {
  workId: string;
  environmentId: string;
  sessionId: string;
  /** The item's sessions token (from its `secret`): never leaves the host. */
  sessionsToken: string | null;
}

/**
 * One work item, from claim to cleanup: a sandbox of its own, the official per-item worker in it
 * (as the sandbox user, in /workspace) with only Berth tokens, then the sandbox deleted (or
 * hibernated with `keep`) and the item's end recorded. Credentials stay on the host: the worker's
 * base URL is the relay on the gateway's port, which swaps them in.
 */
export class ItemRun {
  /** Settles when the item has ended and everything it held is released. */
  readonly done: Promise<void>;
  private proc: ProcessStream | null = null;
  private stopping: "forced" | "shutdown" | null = null;

  constructor(
    private readonly d: ItemRunDeps,
    private readonly integration: ManagedAgentRecord,
    private readonly item: ClaimedItem,
    private readonly environmentKey: string,
  ) {
    // A failure to record the item (the store down) is logged; the run never rejects.
    this.done = this.run().catch((err: unknown) =>
      d.log.error({ err: String(err), workId: item.workId }, "managed agents: a work item's run failed"),
    );
  }

  get workId(): string {
    return this.item.workId;
  }

  /**
   * Ends the item now: the worker is asked to stop (it force-stops its item at the control plane
   * through the relay) and killed after a grace period. `why` is recorded as its failure.
   */
  stop(why: "forced" | "shutdown"): void {
    this.stopping ??= why;
    const proc = this.proc;
    if (!proc) return;
    proc.kill(15);
    setTimeout(() => proc.kill(9), STOP_GRACE_MS).unref();
  }

  private async run(): Promise<void> {
    const { store, sandboxes, relay, log } = this.d;
    const { integration: ig, item } = this;
    const startedAt = new Date().toISOString();
    await store.managedAgents.insertItem({
      workId: item.workId,
      integrationId: ig.id,
      sessionId: item.sessionId,
      sandboxId: null,
      state: "starting",
      startedAt,
      endedAt: null,
      failure: null,
    });
    let sandboxId: string | null = null;
    let token: string | null = null;
    let outcome: { state: ManagedItemState; failure: string | null } = { state: "failed", failure: null };
    try {
      const sandbox = await sandboxes.create(ig.tenantId, {
        ...(ig.sandbox.template ? { template: ig.sandbox.template } : {}),
        ...(ig.sandbox.resources ? { resources: ig.sandbox.resources } : {}),
        network: { egress: "none", ...ig.sandbox.network },
        ...(ig.sandbox.timeoutSeconds !== undefined ? { timeoutSeconds: ig.sandbox.timeoutSeconds } : {}),
        labels: { "berth.managed-agent": ig.id, "berth.work-item": item.workId },
      });
      sandboxId = sandbox.id;
      await store.managedAgents.updateItem(ig.id, item.workId, { sandboxId });
      const hostIp = this.d.runtime.addressing.hostAddress(sandbox.id);
      if (!hostIp)
        throw new Error("the sandbox has no network to reach Berth's relay (BERTH_SANDBOX_NETWORKS)");
      const sessionsToken = item.sessionsToken;
      const environmentKey = this.environmentKey;
      token = relay.grant({
        sandboxId: sandbox.id,
        environmentId: item.environmentId,
        workId: item.workId,
        sessionId: item.sessionId,
        upstream: ig.baseUrl,
        credential: () => sessionsToken ?? environmentKey,
      });
      if (this.stopping) throw new Error("stopped before the worker started");
      const env = sandboxes.processEnv(sandbox, {
        ANTHROPIC_BASE_URL: `http://${hostIp}:${this.d.gatewayPort}${MANAGED_AGENTS_PREFIX}`,
        ANTHROPIC_WORK_ID: item.workId,
        ANTHROPIC_ENVIRONMENT_ID: item.environmentId,
        ANTHROPIC_SESSION_ID: item.sessionId,
        // The worker's sessions token is the Berth token: the relay swaps in the real credential.
        ANTHROPIC_WORK_SECRET: Buffer.from(JSON.stringify({ sessions_token: token })).toString("base64url"),
      });
      this.proc = await sandboxes.client(sandbox.id).exec({
        cmd: [this.d.worker.node, this.d.worker.script],
        cwd: WORKDIR,
        env,
      });
      await store.managedAgents.updateItem(ig.id, item.workId, { state: "running" });
      if (this.stopping) this.stop(this.stopping);
      const { exitCode, stderr } = await waitForExit(this.proc);
      if (this.stopping) outcome = { state: "stopped", failure: stopReason(this.stopping) };
      else if (exitCode === 0) outcome = { state: "completed", failure: null };
      else outcome = { state: "failed", failure: `the worker exited with ${exitCode}: ${stderr.trim()}` };
    } catch (err) {
      outcome = this.stopping
        ? { state: "stopped", failure: stopReason(this.stopping) }
        : { state: "failed", failure: String((err as Error).message ?? err) };
      log.warn({ err: String(err), workId: item.workId }, "managed agents: a work item failed to run");
    } finally {
      if (token) relay.revoke(token);
      // A worker that did not end cleanly may have left the item claimed: stop it from here.
      if (outcome.state !== "completed")
        await stopWorkItem(ig.baseUrl, item.sessionsToken ?? this.environmentKey, item, log);
      if (sandboxId) await this.release(sandboxId);
      await store.managedAgents.updateItem(ig.id, item.workId, {
        ...outcome,
        endedAt: new Date().toISOString(),
      });
    }
  }

  /** Deletes the item's sandbox, or hibernates it when the integration keeps them. */
  private async release(sandboxId: string): Promise<void> {
    const { sandboxes, log } = this.d;
    try {
      if (this.integration.sandbox.keep && this.stopping !== "shutdown")
        await sandboxes.hibernate(this.integration.tenantId, sandboxId);
      else await sandboxes.remove(this.integration.tenantId, sandboxId);
    } catch (err) {
      log.warn({ err: String(err), sandboxId }, "managed agents: could not release a work item's sandbox");
    }
  }
}

function stopReason(why: "forced" | "shutdown"): string {
  return why === "forced"
    ? "stopped by a forced delete of its integration"
    : "stopped: the server shut down while it ran";
}

/** The worker's exit code and the tail of its stderr. */
function waitForExit(p: ProcessStream): Promise<{ exitCode: number | null; stderr: string }> {
  let stderr = "";
  p.on("stderr", (b: Buffer) => {
    stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL);
  });
  // Its output is not needed; reading it keeps the stream flowing.
  p.on("stdout", () => {});
  return new Promise((resolve) => {
    p.once("exit", (s: { exitCode: number | null }) => resolve({ exitCode: s.exitCode, stderr }));
    p.once("error", (err: Error) => resolve({ exitCode: null, stderr: `${stderr}\n${err.message}` }));
  });
}
