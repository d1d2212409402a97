import type { BerthClient, CallOptions } from "./client.js";

/** A work item Berth claimed from a Managed Agents environment. */
export interface ManagedAgentItem {
  workId: string;
  sessionId: string;
  sandboxId: string | null;
  state: "starting" | "running" | "completed" | "failed" | "stopped";
  startedAt: string;
  endedAt: string | null;
  failure: string | null;
}

/** A Claude Managed Agents integration as the API shows it (never its environment key). */
export interface ManagedAgentInfo {
  id: string;
  environmentId: string;
  baseUrl: string;
  /** `poll`: long-polls the queue; `webhook`: claims work when a verified webhook says a run started. */
  mode: "poll" | "webhook";
  maxConcurrent: number;
  sandbox: {
    template?: string;
    resources?: Record<string, number>;
    network?: { egress?: "none" | "allowlist" | "open"; allow?: string[] };
    timeoutSeconds?: number;
    keep?: boolean;
  };
  state: "active" | "draining" | "failed" | "deleted";
  failure: string | null;
  counts: { claimed: number; running: number; completed: number; failed: number; stopped: number };
  createdAt: string;
  updatedAt: string;
  /** Its latest items (on `get` only). */
  items?: ManagedAgentItem[];
}

/** What `add` takes. */
export interface ManagedAgentSpec {
  environmentId: string;
  environmentKey: string;
  baseUrl?: string;
  maxConcurrent?: number;
  sandbox?: ManagedAgentInfo["sandbox"];
  /** Webhook mode: the signing secret (`whsec_...`) of the `session.status_run_started` webhook. */
  webhookSecret?: string;
}

/** Claude Managed Agents integrations: Berth as the worker of a `self_hosted` environment. */
export class ManagedAgents {
  constructor(private readonly client: BerthClient) {}

  /** Starts polling the environment; each work item then runs in a sandbox of its own. */
  add(spec: ManagedAgentSpec, o: CallOptions = {}): Promise<ManagedAgentInfo> {
    return this.client.json("POST", "/v1/integrations/managed-agents", { json: spec, signal: o.signal });
  }

  /** Every integration of the caller's tenant. */
  async list(o: CallOptions = {}): Promise<ManagedAgentInfo[]> {
    return (
      await this.client.json<{ items: ManagedAgentInfo[] }>("GET", "/v1/integrations/managed-agents", {
        signal: o.signal,
      })
    ).items;
  }

  /** One integration with its latest items. */
  get(id: string, o: CallOptions = {}): Promise<ManagedAgentInfo> {
    return this.client.json("GET", `/v1/integrations/managed-agents/${encodeURIComponent(id)}`, {
      signal: o.signal,
    });
  }

  /** Stops claiming work; running items end on their own, or now with `force`. */
  remove(id: string, o: { force?: boolean } & CallOptions = {}): Promise<ManagedAgentInfo> {
    const q = o.force ? "?force=true" : "";
    return this.client.json("DELETE", `/v1/integrations/managed-agents/${encodeURIComponent(id)}${q}`, {
      signal: o.signal,
    });
  }
}
