/**
 * Claude Managed Agents integrations: Berth as the worker of a `self_hosted` environment. Each
 * work item the environment's queue hands out runs in a sandbox of its own.
 */
import type { NetworkPolicy, Resources } from "./types.js";

/** An integration's state: `active` claims work; `draining` claims none and waits for its items. */
export type ManagedAgentState = "active" | "draining" | "failed" | "deleted";

/** A work item's state in Berth. */
export type ManagedItemState = "starting" | "running" | "completed" | "failed" | "stopped";

/** The sandbox each work item gets. */
export interface ManagedAgentSandboxSpec {
  template?: string;
  resources?: Partial<Resources>;
  network?: Partial<NetworkPolicy>;
  timeoutSeconds?: number;
  /** Hibernate the sandbox when its item ends instead of deleting it. */
  keep?: boolean;
}

/** One integration as stored. The environment key is kept only encrypted (`keyCipher`). */
export interface ManagedAgentRecord {
  id: string;
  tenantId: string;
  /** The server that polls for it (several servers may share a store). */
  replica: string;
  environmentId: string;
  baseUrl: string;
  /** The environment key, encrypted with the server's secret (never returned). */
  keyCipher: string;
  /**
   * Webhook mode: the webhook signing secret, encrypted like the key. Set: Berth claims work when
   * a verified `session.status_run_started` webhook arrives instead of long-polling.
   */
  webhookCipher: string | null;
  maxConcurrent: number;
  sandbox: ManagedAgentSandboxSpec;
  state: ManagedAgentState;
  /** Why it failed (the control plane refused the key, ...). */
  failure: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One work item Berth claimed. */
export interface ManagedItemRecord {
  workId: string;
  integrationId: string;
  sessionId: string;
  sandboxId: string | null;
  state: ManagedItemState;
  startedAt: string;
  endedAt: string | null;
  failure: string | null;
}

/** The store's part for integrations and their items. */
export interface ManagedAgentRepository {
  insert(r: ManagedAgentRecord): Promise<void>;
  get(id: string): Promise<ManagedAgentRecord | null>;
  /** Newest first; `tenantId` absent: every tenant's (recovery). */
  list(q: { tenantId?: string; states?: ManagedAgentState[] }): Promise<ManagedAgentRecord[]>;
  update(
    id: string,
    patch: Partial<Pick<ManagedAgentRecord, "state" | "failure">>,
  ): Promise<ManagedAgentRecord | null>;
  /** Records a claimed item; an item claimed again (its lease was lost) starts over. */
  insertItem(i: ManagedItemRecord): Promise<void>;
  updateItem(
    integrationId: string,
    workId: string,
    patch: Partial<Pick<ManagedItemRecord, "state" | "sandboxId" | "endedAt" | "failure">>,
  ): Promise<void>;
  /** An integration's items, newest first (at most `limit`). */
  listItems(integrationId: string, limit?: number): Promise<ManagedItemRecord[]>;
  /** Items of any integration in one of `states` (recovery). */
  listItemsIn(states: ManagedItemState[]): Promise<ManagedItemRecord[]>;
  /** The sandboxes of every item of the tenant's integrations (every tenant's: none given), for usage. */
  listItemSandboxes(tenantId?: string): Promise<string[]>;
  /** How many items of an integration are in each state. */
  countItems(integrationId: string): Promise<Record<string, number>>;
}
