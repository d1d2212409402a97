import {
  BerthError,
  ForbiddenError,
  InvalidRequestError,
  type Logger,
  type ManagedAgentRecord,
  type ManagedAgentSandboxSpec,
  type ManagedItemRecord,
  NotFoundError,
  newId,
  type Runtime,
  type Store,
} from "@berth/core";
import { Webhook } from "standardwebhooks";
import type { ManagedAgentsRelay } from "../../gateway/managed-agents-relay.js";
import type { SandboxService } from "../../sandboxes/service.js";
import { stopWorkItem } from "./control-plane.js";
import { PollerHost } from "./poller-host.js";
import type { SecretBox } from "./secret-box.js";
import type { WorkerInstall } from "./worker-install.js";

/** The public API's control plane when none is given. */
export const DEFAULT_BASE_URL = "https://api.anthropic.com";
/** Most items one integration runs at once. */
export { MAX_CONCURRENT_LIMIT } from "@berth/core/contract";

/** What `POST /v1/integrations/managed-agents` takes. */
export interface CreateManagedAgentBody {
  environmentId: string;
  environmentKey: string;
  baseUrl?: string;
  maxConcurrent?: number;
  sandbox?: ManagedAgentSandboxSpec;
  /** Webhook mode: the signing secret of the `session.status_run_started` webhook (`whsec_...`). */
  webhookSecret?: string;
}

/** An integration as the API shows it: never its key. */
export interface ManagedAgentView {
  id: string;
  environmentId: string;
  baseUrl: string;
  /** `poll`: long-polls the queue; `webhook`: claims work when a verified webhook says a run started. */
  mode: "poll" | "webhook";
  maxConcurrent: number;
  sandbox: ManagedAgentSandboxSpec;
  state: ManagedAgentRecord["state"];
  failure: string | null;
  counts: { claimed: number; running: number; completed: number; failed: number; stopped: number };
  createdAt: string;
  updatedAt: string;
  items?: Array<Omit<ManagedItemRecord, "integrationId">>;
}

export interface ManagedAgentsDeps {
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  relay: ManagedAgentsRelay;
  gatewayPort: number;
  worker: WorkerInstall;
  box: SecretBox;
  replica: string;
  log: Logger;
}

/**
 * Claude Managed Agents integrations of this server: each polls its `self_hosted` environment
 * and runs every work item in a sandbox of its own. The store keeps the integrations (keys
 * sealed with the server secret) and their items; this server polls for the ones it created.
 */
export class ManagedAgentsService {
  private readonly hosts = new Map<string, PollerHost>();

  constructor(private readonly d: ManagedAgentsDeps) {}

  /**
   * Registers an environment and starts polling it. Only an admin key may name another control
   * plane than the public API: the server would otherwise send requests (and the key) wherever a
   * tenant says, its own network and the cloud metadata service included.
   */
  async create(
    caller: { tenantId: string; admin: boolean },
    body: CreateManagedAgentBody,
  ): Promise<ManagedAgentView> {
    const tenantId = caller.tenantId;
    const baseUrl = checkBaseUrl(body.baseUrl ?? DEFAULT_BASE_URL);
    if (baseUrl !== DEFAULT_BASE_URL && !caller.admin)
      throw new ForbiddenError(
        `only an admin key may set baseUrl to another control plane than ${DEFAULT_BASE_URL}`,
      );
    const now = new Date().toISOString();
    const record: ManagedAgentRecord = {
      id: newId("ma"),
      tenantId,
      replica: this.d.replica,
      environmentId: body.environmentId,
      baseUrl,
      keyCipher: this.d.box.seal(body.environmentKey),
      webhookCipher: body.webhookSecret ? this.d.box.seal(checkWebhookSecret(body.webhookSecret)) : null,
      maxConcurrent: body.maxConcurrent ?? 1,
      sandbox: body.sandbox ?? {},
      state: "active",
      failure: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.d.store.managedAgents.insert(record);
    this.startPolling(record);
    return this.view(record, false);
  }

  async get(tenantId: string, id: string): Promise<ManagedAgentView> {
    return this.view(await this.record(tenantId, id), true);
  }

  async list(tenantId: string): Promise<ManagedAgentView[]> {
    const records = await this.d.store.managedAgents.list({
      tenantId,
      states: ["active", "draining", "failed"],
    });
    return Promise.all(records.map((r) => this.view(r, false)));
  }

  /**
   * Stops claiming work. Running items end on their own and the integration is `deleted` when
   * the last has (`force`: they are stopped now). Answers the integration as it is then.
   */
  async remove(tenantId: string, id: string, force: boolean): Promise<ManagedAgentView> {
    const r = await this.record(tenantId, id);
    if (r.state === "deleted") return this.view(r, false);
    const host = this.hosts.get(id);
    await this.d.store.managedAgents.update(id, { state: "draining" });
    const drained = (host?.drain({ force }) ?? Promise.resolve()).then(async () => {
      this.hosts.delete(id);
      await this.d.store.managedAgents.update(id, { state: "deleted" });
    });
    if (force || !host?.runningCount) await drained;
    else
      drained.catch((err: unknown) =>
        this.d.log.warn({ err: String(err), id }, "managed agents: drain failed"),
      );
    return this.view(await this.record(tenantId, id), false);
  }

  /**
   * After a start: items the last run left running are stopped at the control plane and their
   * sandboxes deleted (their workers died with the server's connections); then this server's
   * active integrations poll again.
   */
  async recover(): Promise<void> {
    const mine = new Map(
      (await this.d.store.managedAgents.list({}))
        .filter((r) => r.replica === this.d.replica)
        .map((r) => [r.id, r]),
    );
    for (const item of await this.d.store.managedAgents.listItemsIn(["starting", "running"])) {
      const ig = mine.get(item.integrationId);
      if (!ig) continue;
      await stopWorkItem(
        ig.baseUrl,
        this.d.box.open(ig.keyCipher),
        { ...item, environmentId: ig.environmentId },
        this.d.log,
      );
      if (item.sandboxId) await this.d.sandboxes.remove(ig.tenantId, item.sandboxId).catch(() => {});
      await this.d.store.managedAgents.updateItem(ig.id, item.workId, {
        state: "stopped",
        endedAt: new Date().toISOString(),
        failure: "stopped: the server restarted while it ran",
      });
    }
    for (const ig of mine.values()) {
      if (ig.state === "active") this.startPolling(ig);
      if (ig.state === "draining") await this.d.store.managedAgents.update(ig.id, { state: "deleted" });
    }
  }

  /**
   * A webhook of an integration in webhook mode, verified with its signing secret (Standard
   * Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`). A `session.status_run_started`
   * event makes it claim what the queue holds; other events are acknowledged and ignored.
   */
  async webhook(id: string, body: string, headers: Record<string, string>): Promise<void> {
    const r = await this.d.store.managedAgents.get(id);
    if (!r?.webhookCipher || r.state !== "active") throw new NotFoundError("managed_agent", id);
    let event: { data?: { type?: unknown } };
    try {
      new Webhook(this.d.box.open(r.webhookCipher)).verify(body, headers);
      event = JSON.parse(body);
    } catch {
      throw new BerthError(
        "invalid_signature",
        "the webhook's signature does not verify with the integration's signing secret",
      );
    }
    if (event.data?.type === "session.status_run_started") this.hosts.get(id)?.claimNow();
  }

  /** Stops polling and every running item (each stopped at the control plane, its sandbox deleted). */
  async close(): Promise<void> {
    const hosts = [...this.hosts.values()];
    this.hosts.clear();
    await Promise.all(hosts.map((h) => h.drain({ force: true, why: "shutdown" })));
  }

  private startPolling(r: ManagedAgentRecord): void {
    const host = new PollerHost(
      this.d,
      r,
      this.d.box.open(r.keyCipher),
      r.webhookCipher !== null,
      (failure) => {
        this.hosts.delete(r.id);
        void this.d.store.managedAgents.update(r.id, { state: "failed", failure });
      },
    );
    this.hosts.set(r.id, host);
  }

  private async record(tenantId: string, id: string): Promise<ManagedAgentRecord> {
    const r = await this.d.store.managedAgents.get(id);
    if (!r || r.tenantId !== tenantId) throw new NotFoundError("managed_agent", id);
    return r;
  }

  private async view(r: ManagedAgentRecord, withItems: boolean): Promise<ManagedAgentView> {
    const n = await this.d.store.managedAgents.countItems(r.id);
    const count = (...states: string[]) => states.reduce((sum, s) => sum + (n[s] ?? 0), 0);
    const view: ManagedAgentView = {
      id: r.id,
      environmentId: r.environmentId,
      baseUrl: r.baseUrl,
      mode: r.webhookCipher ? "webhook" : "poll",
      maxConcurrent: r.maxConcurrent,
      sandbox: r.sandbox,
      state: r.state,
      failure: r.failure,
      counts: {
        claimed: count("starting", "running", "completed", "failed", "stopped"),
        running: count("starting", "running"),
        completed: count("completed"),
        failed: count("failed"),
        stopped: count("stopped"),
      },
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
    if (withItems)
      view.items = (await this.d.store.managedAgents.listItems(r.id)).map(({ integrationId: _, ...i }) => i);
    return view;
  }
}

/** The control plane's base URL: http(s), no credentials, no query. */
function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidRequestError("baseUrl must be an http(s) URL such as https://api.anthropic.com", {
      field: "baseUrl",
    });
  }
  if (!/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash)
    throw new InvalidRequestError("baseUrl must be an http(s) URL without credentials, query or fragment", {
      field: "baseUrl",
    });
  return url.href.replace(/\/+$/, "");
}

/** A Standard Webhooks signing secret: `whsec_` and base64 (what the Console shows). */
function checkWebhookSecret(secret: string): string {
  try {
    new Webhook(secret);
  } catch {
    throw new InvalidRequestError("webhookSecret must be a webhook signing secret (whsec_ and base64)", {
      field: "webhookSecret",
    });
  }
  return secret;
}
