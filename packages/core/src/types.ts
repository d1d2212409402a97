/**
 * Domain types shared by every package. Wire shapes are the contract's (`./contract`, served as
 * `GET /openapi.json`); the types here that a client also sees are derived from it.
 */
import type { Static } from "@sinclair/typebox";
import type * as contract from "./contract/index.js";
import type { SandboxState } from "./contract/sandboxes.js";

export { SANDBOX_STATES, type SandboxState } from "./contract/sandboxes.js";

/** Kernel-enforced limits of one sandbox. */
export type Resources = Static<typeof contract.Resources>;

/** How a sandbox may reach the network. */
export type EgressMode = (typeof contract.EGRESS_MODES)[number];
/** A sandbox's egress policy. */
export type NetworkPolicy = Static<typeof contract.NetworkPolicy>;

/** What happens to a sandbox left idle. */
export type IdleAction = (typeof contract.IDLE_ACTIONS)[number];
/** After how long idle, and what then. */
export type IdlePolicy = Static<typeof contract.IdlePolicy>;

/** A sandbox as the store keeps it (the API view drops internal fields). */
export interface SandboxRecord {
  id: string;
  tenantId: string;
  state: SandboxState;
  template: string;
  resources: Resources;
  network: NetworkPolicy;
  env: Record<string, string>;
  labels: Record<string, string>;
  idle: IdlePolicy | null;
  timeoutSeconds: number | null;
  createdAt: string;
  expiresAt: string | null;
  lastActivityAt: string;
  /** Why a sandbox is `failed`, for a person. */
  failureReason: string | null;
  /** Driver-private facts needed to find the sandbox again after a restart. */
  runtimeInfo: Record<string, unknown>;
  /** Volumes mounted into it, by name. */
  volumes: VolumeMount[];
  /** The server (replica) whose runtime holds it; null for rows from before replicas. */
  replica?: string | null;
}

/**
 * One stretch of time a sandbox was running (not starting, paused, hibernated or ended): what
 * its compute is billed for. `endedAt` is null while it runs.
 */
export interface SandboxRun {
  sandboxId: string;
  startedAt: string;
  endedAt: string | null;
}

/** A volume mounted into a sandbox. */
export type VolumeMount = Static<typeof contract.VolumeMount>;

/** A named persistent directory of a tenant. */
export interface VolumeRecord {
  id: string;
  tenantId: string;
  name: string;
  sizeMiB: number;
  createdAt: string;
}

/** The Sandbox object of the API contract. */
export type SandboxView = contract.Sandbox;

/** The API view of a stored sandbox (drops tenant, runtime facts and replica). */
export function toSandboxView(r: SandboxRecord): SandboxView {
  return {
    id: r.id,
    state: r.state,
    template: r.template,
    resources: r.resources,
    network: r.network,
    labels: r.labels,
    env: r.env,
    idle: r.idle,
    timeoutSeconds: r.timeoutSeconds,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    lastActivityAt: r.lastActivityAt,
    ...(r.failureReason ? { failureReason: r.failureReason } : {}),
    volumes: r.volumes,
  };
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  /** USD the tenant's sessions may spend on model tokens per calendar month (UTC); null: no cap. */
  monthlyBudgetUsd?: number | null;
}

/** An API key; only its hash is stored. */
export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  hash: string;
  admin: boolean;
  createdAt: string;
  revokedAt: string | null;
}

/** A background process started through the API. */
export interface ProcessRecord {
  sandboxId: string;
  pid: number;
  cmd: string[];
  cwd: string | null;
  state: "running" | "exited";
  exitCode: number | null;
  startedAt: string;
  exitedAt: string | null;
}

/** A lifecycle event of a sandbox (`state`, `oom`, `timeout`, `idle`, ...). */
export interface SandboxEvent {
  seq: number;
  sandboxId: string;
  type: string;
  data: Record<string, unknown>;
  at: string;
}

/** A captured writable layer of a sandbox (with what a new sandbox needs to start from it). */
export interface SnapshotRecord {
  id: string;
  tenantId: string;
  sandboxId: string;
  name: string | null;
  template: string;
  resources: Resources;
  env: Record<string, string>;
  sizeBytes: number;
  createdAt: string;
}

/** A port of a sandbox exposed through the server's proxy; only the token's hash is stored. */
export interface PortRecord {
  sandboxId: string;
  tenantId: string;
  port: number;
  /** Open to anyone with the URL; otherwise requests need the token. */
  public: boolean;
  /** SHA-256 (hex) of the port's token; null for a public port. */
  tokenHash: string | null;
  createdAt: string;
}

/** A background process to start again whenever its sandbox wakes (`restart: "on-wake"`). */
export interface WakeProcess {
  sandboxId: string;
  /** Its pid in the sandbox's current life. */
  pid: number;
  cmd: string[];
  cwd: string | null;
  /** The env it was started with (the sandbox's env goes under it again). */
  env: Record<string, string>;
}

/** One mutating API call, as the audit trail keeps it. */
export interface AuditRecord {
  id: number;
  at: string;
  /** Null when the call was refused before its key was known (401). */
  tenantId: string | null;
  keyId: string | null;
  method: string;
  /** Path and query as sent (bounded). */
  path: string;
  status: number;
  requestId: string;
}

/** A server sharing the store with others: where to reach it, and when it last said so. */
export interface ReplicaRecord {
  id: string;
  url: string;
  seenAt: string;
}
