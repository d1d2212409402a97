import type { SessionEvent, SessionPatch, SessionRecord, SessionState } from "./sessions.js";
import type {
  ApiKeyRecord,
  AuditRecord,
  PortRecord,
  ProcessRecord,
  ReplicaRecord,
  SandboxEvent,
  SandboxRecord,
  SandboxRun,
  SandboxState,
  SnapshotRecord,
  Tenant,
  VolumeRecord,
  WakeProcess,
} from "./types.js";

/** Filters for listing sandboxes; `cursor` is the last id of the previous page. */
export interface SandboxQuery {
  tenantId?: string;
  states?: SandboxState[];
  labels?: Record<string, string>;
  limit?: number;
  cursor?: string;
  /** Only the sandboxes of this replica (rows from before replicas count as anyone's). */
  replica?: string;
}

/** Fields of a sandbox that may change after creation (tenant and creation time: only when a warm-pool sandbox is handed to a session). */
export type SandboxPatch = Partial<
  Pick<
    SandboxRecord,
    | "tenantId"
    | "createdAt"
    | "state"
    | "network"
    | "labels"
    | "idle"
    | "timeoutSeconds"
    | "expiresAt"
    | "lastActivityAt"
    | "failureReason"
    | "runtimeInfo"
  >
>;

/** Tenants and their monthly model budgets. */
export interface TenantStore {
  createTenant(t: Tenant): Promise<void>;
  getTenant(id: string): Promise<Tenant | null>;
  listTenants(): Promise<Tenant[]>;
  /** Sets (or with null clears) a tenant's monthly model budget; false when the tenant is unknown. */
  setTenantBudget(id: string, monthlyBudgetUsd: number | null): Promise<boolean>;
}

/** API keys (only their hashes). */
export interface ApiKeyStore {
  createApiKey(k: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null>;
  listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, at: string): Promise<void>;
}

/** What is metered: tenants' model spend per month and sandboxes' running stretches (compute). */
export interface UsageStore {
  /** Adds `usd` to what a tenant's models cost in `month` (`YYYY-MM`), atomically across replicas. */
  addTenantSpend(id: string, month: string, usd: number): Promise<void>;
  /** What a tenant's models cost in `month` (`YYYY-MM`) so far. */
  tenantSpend(id: string, month: string): Promise<number>;
  /** Opens a running stretch of a sandbox at `at` (nothing if one is open). */
  startSandboxRun(sandboxId: string, at: string): Promise<void>;
  /** Closes the open running stretch of a sandbox at `at` (nothing if none is open). */
  endSandboxRun(sandboxId: string, at: string): Promise<void>;
  /** The running stretches of these sandboxes, oldest first. */
  listSandboxRuns(sandboxIds: string[]): Promise<SandboxRun[]>;
  /** Forgets a sandbox's running stretches (a warm-pool sandbox handed to a tenant starts afresh). */
  deleteSandboxRuns(sandboxId: string): Promise<void>;
}

/** Sandbox records. */
export interface SandboxStore {
  insertSandbox(s: SandboxRecord): Promise<void>;
  getSandbox(id: string): Promise<SandboxRecord | null>;
  /** Updates the given fields; returns the new record, or null when the id is unknown. */
  updateSandbox(id: string, patch: SandboxPatch): Promise<SandboxRecord | null>;
  /** Sandboxes ordered by id; `nextCursor` is set when more remain. */
  listSandboxes(q: SandboxQuery): Promise<{ items: SandboxRecord[]; nextCursor: string | null }>;
  /**
   * Removes the row for good with everything kept about it (processes, wake processes, ports,
   * events, running stretches), all or nothing. For retention cleanup, and a create the runtime
   * refused as a bad request; delete keeps state `deleted`.
   */
  purgeSandbox(id: string): Promise<void>;
  /** How many sandboxes are in each state (states with none are left out). */
  countSandboxesByState(): Promise<Partial<Record<SandboxState, number>>>;
}

/** The processes of sandboxes: those started in the background, and those to restart on wake. */
export interface ProcessStore {
  upsertProcess(p: ProcessRecord): Promise<void>;
  listProcesses(sandboxId: string): Promise<ProcessRecord[]>;
  saveWakeProcess(p: WakeProcess): Promise<void>;
  listWakeProcesses(sandboxId: string): Promise<WakeProcess[]>;
  deleteWakeProcess(sandboxId: string, pid: number): Promise<void>;
}

/** Sandboxes' event logs. */
export interface SandboxEventStore {
  /** Appends an event; the store assigns `seq` (increasing per store). */
  appendEvent(e: Omit<SandboxEvent, "seq">): Promise<SandboxEvent>;
  /** The newest event of a sandbox, or null. */
  lastEvent(sandboxId: string): Promise<SandboxEvent | null>;
  /** Events of one sandbox after `afterSeq`, oldest first. */
  listEvents(sandboxId: string, afterSeq: number, limit?: number): Promise<SandboxEvent[]>;
}

/** Snapshot records (the files are the runtime's). */
export interface SnapshotStore {
  insertSnapshot(s: SnapshotRecord): Promise<void>;
  getSnapshot(id: string): Promise<SnapshotRecord | null>;
  /** A tenant's snapshots, newest first. */
  listSnapshots(tenantId: string): Promise<SnapshotRecord[]>;
  deleteSnapshot(id: string): Promise<void>;
}

/** Exposed ports of sandboxes and their access tokens (hashed). */
export interface PortStore {
  /** Exposes a port, or replaces its record (a new token, a new `public`). */
  upsertPort(p: PortRecord): Promise<void>;
  getPort(sandboxId: string, port: number): Promise<PortRecord | null>;
  /** A sandbox's exposed ports, by port number. */
  listPorts(sandboxId: string): Promise<PortRecord[]>;
  /** Unexposes one port; false when it was not exposed. */
  deletePort(sandboxId: string, port: number): Promise<boolean>;
  /** Unexposes every port of a sandbox (when it ends). */
  deletePorts(sandboxId: string): Promise<void>;
}

/** Named volumes of tenants. */
export interface VolumeStore {
  /** ConflictError when the tenant already has a volume of that name. */
  insertVolume(v: VolumeRecord): Promise<void>;
  getVolumeByName(tenantId: string, name: string): Promise<VolumeRecord | null>;
  listVolumes(tenantId: string): Promise<VolumeRecord[]>;
  deleteVolume(id: string): Promise<void>;
}

/** The servers sharing the store, and which of them holds what. */
export interface ReplicaStore {
  /** Gives sandboxes, snapshots and volumes from before replicas to `replica` (the first to start). */
  claimUnowned(replica: string): Promise<void>;
  /** Records that a replica is alive and where it answers. */
  upsertReplica(r: ReplicaRecord): Promise<void>;
  getReplica(id: string): Promise<ReplicaRecord | null>;
  /** How many replicas have ever shared this store. */
  countReplicas(): Promise<number>;
  /** Which replica holds a snapshot or a volume (null: unknown, from before replicas). */
  replicaOf(kind: "snapshots" | "volumes", id: string): Promise<string | null>;
  /** Marks a snapshot or volume as held by `replica`. */
  setReplicaOf(kind: "snapshots" | "volumes", id: string, replica: string): Promise<void>;
}

/** Agent sessions and their event logs. */
export interface SessionStore {
  insertSession(s: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** Updates the given fields (and `updatedAt`); returns the new record, or null when unknown. */
  updateSession(id: string, patch: SessionPatch): Promise<SessionRecord | null>;
  /** Sessions, newest first; `tenantId` absent: every tenant's (recovery). */
  listSessions(q: {
    tenantId?: string;
    states?: SessionState[];
    sandboxId?: string;
    limit?: number;
  }): Promise<SessionRecord[]>;
  /** How many agent sessions are in each state (states with none are left out). */
  countSessionsByState(): Promise<Record<string, number>>;
  /** Appends a session event; the store assigns `seq` (increasing per store). */
  appendSessionEvent(e: Omit<SessionEvent, "seq">): Promise<SessionEvent>;
  /** Events of one session after `afterSeq`, oldest first. */
  listSessionEvents(sessionId: string, afterSeq: number, limit?: number): Promise<SessionEvent[]>;
}

/** The audit trail of mutating API calls. */
export interface AuditStore {
  /** Records a mutating API call (the store assigns `id`, increasing). */
  appendAudit(a: Omit<AuditRecord, "id">): Promise<void>;
  /** Audit rows with `from <= at < to`, oldest first, after `afterId`. */
  listAudit(q: { from?: string; to?: string; afterId?: number; limit: number }): Promise<AuditRecord[]>;
}

/**
 * Everything the store keeps, one interface per aggregate; what a transaction can do. The store
 * itself is one, and so is the handle `Store.transaction` passes to its callback.
 */
export interface StoreTx
  extends TenantStore,
    ApiKeyStore,
    UsageStore,
    SandboxStore,
    ProcessStore,
    SandboxEventStore,
    SnapshotStore,
    PortStore,
    VolumeStore,
    ReplicaStore,
    SessionStore,
    AuditStore {
  readonly kind: "sqlite" | "postgres";
  /**
   * Runs `fn` in a transaction: every write made through `tx` lands together when `fn` resolves,
   * none when it throws (the error is rethrown). Inside `fn` use `tx` only: the store itself
   * throws there (on SQLite it would wait for the transaction it is part of). Called on a `tx`,
   * it nests (a savepoint: a failure inside undoes only the inner part).
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
}

/**
 * The store: everything Berth must not forget. SQLite (embedded default) and PostgreSQL
 * implement it and pass the same conformance tests. All methods are tenant-agnostic; the
 * server scopes by tenant.
 */
export interface Store extends StoreTx {
  /** Runs pending migrations. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
