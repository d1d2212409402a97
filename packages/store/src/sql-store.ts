import type {
  ApiKeyRecord,
  AuditRecord,
  PortRecord,
  ProcessRecord,
  ReplicaRecord,
  SandboxEvent,
  SandboxPatch,
  SandboxQuery,
  SandboxRecord,
  SessionEvent,
  SessionPatch,
  SessionRecord,
  SessionState,
  SnapshotRecord,
  Store,
  StoreTx,
  Tenant,
  VolumeRecord,
  WakeProcess,
} from "@berth/core";
import type { Db, Sql } from "./db.js";
import { migrate } from "./migrations.js";
import { ApiKeyRows } from "./repositories/api-keys.js";
import { AuditRows } from "./repositories/audit.js";
import { PortRows } from "./repositories/ports.js";
import { ProcessRows } from "./repositories/processes.js";
import { ReplicaRows } from "./repositories/replicas.js";
import { SandboxEventRows } from "./repositories/sandbox-events.js";
import { SandboxRows } from "./repositories/sandboxes.js";
import { SessionRows } from "./repositories/sessions.js";
import { SnapshotRows } from "./repositories/snapshots.js";
import { TenantRows } from "./repositories/tenants.js";
import { UsageRows } from "./repositories/usage.js";
import { VolumeRows } from "./repositories/volumes.js";

/**
 * The store's records on a database or inside one of its transactions: one repository per
 * aggregate, behind the flat `StoreTx` interface the server calls. Writes that span
 * repositories (purging a sandbox) run in a transaction here.
 */
export class SqlRecords implements StoreTx {
  private readonly tenants: TenantRows;
  private readonly keys: ApiKeyRows;
  private readonly usage: UsageRows;
  private readonly sandboxes: SandboxRows;
  private readonly processes: ProcessRows;
  private readonly events: SandboxEventRows;
  private readonly snapshots: SnapshotRows;
  private readonly ports: PortRows;
  private readonly volumes: VolumeRows;
  private readonly replicas: ReplicaRows;
  private readonly sessions: SessionRows;
  private readonly audit: AuditRows;

  constructor(private readonly sql: Sql) {
    this.tenants = new TenantRows(sql);
    this.keys = new ApiKeyRows(sql);
    this.usage = new UsageRows(sql);
    this.sandboxes = new SandboxRows(sql);
    this.processes = new ProcessRows(sql);
    this.events = new SandboxEventRows(sql);
    this.snapshots = new SnapshotRows(sql);
    this.ports = new PortRows(sql);
    this.volumes = new VolumeRows(sql);
    this.replicas = new ReplicaRows(sql);
    this.sessions = new SessionRows(sql);
    this.audit = new AuditRows(sql);
  }

  get kind(): "sqlite" | "postgres" {
    return this.sql.dialect;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.sql.transaction((tx) => fn(new SqlRecords(tx)));
  }

  purgeSandbox(id: string): Promise<void> {
    return this.sql.transaction(async (sql) => {
      const records = new SqlRecords(sql);
      await records.processes.deleteProcessesOf(id);
      await records.ports.deletePorts(id);
      await records.events.deleteEventsOf(id);
      await records.usage.deleteSandboxRuns(id);
      await records.sandboxes.deleteSandbox(id);
    });
  }

  // Tenants, keys, usage.
  createTenant = (t: Tenant) => this.tenants.createTenant(t);
  getTenant = (id: string) => this.tenants.getTenant(id);
  listTenants = () => this.tenants.listTenants();
  setTenantBudget = (id: string, usd: number | null) => this.tenants.setTenantBudget(id, usd);
  createApiKey = (k: ApiKeyRecord) => this.keys.createApiKey(k);
  findApiKeyByHash = (hash: string) => this.keys.findApiKeyByHash(hash);
  listApiKeys = (tenantId?: string) => this.keys.listApiKeys(tenantId);
  revokeApiKey = (id: string, at: string) => this.keys.revokeApiKey(id, at);
  addTenantSpend = (id: string, month: string, usd: number) => this.usage.addTenantSpend(id, month, usd);
  tenantSpend = (id: string, month: string) => this.usage.tenantSpend(id, month);
  startSandboxRun = (sandboxId: string, at: string) => this.usage.startSandboxRun(sandboxId, at);
  endSandboxRun = (sandboxId: string, at: string) => this.usage.endSandboxRun(sandboxId, at);
  listSandboxRuns = (sandboxIds: string[]) => this.usage.listSandboxRuns(sandboxIds);
  deleteSandboxRuns = (sandboxId: string) => this.usage.deleteSandboxRuns(sandboxId);

  // Sandboxes and what hangs off them.
  insertSandbox = (s: SandboxRecord) => this.sandboxes.insertSandbox(s);
  getSandbox = (id: string) => this.sandboxes.getSandbox(id);
  updateSandbox = (id: string, patch: SandboxPatch) => this.sandboxes.updateSandbox(id, patch);
  listSandboxes = (q: SandboxQuery) => this.sandboxes.listSandboxes(q);
  countSandboxesByState = () => this.sandboxes.countSandboxesByState();
  upsertProcess = (p: ProcessRecord) => this.processes.upsertProcess(p);
  listProcesses = (sandboxId: string) => this.processes.listProcesses(sandboxId);
  saveWakeProcess = (p: WakeProcess) => this.processes.saveWakeProcess(p);
  listWakeProcesses = (sandboxId: string) => this.processes.listWakeProcesses(sandboxId);
  deleteWakeProcess = (sandboxId: string, pid: number) => this.processes.deleteWakeProcess(sandboxId, pid);
  appendEvent = (e: Omit<SandboxEvent, "seq">) => this.events.appendEvent(e);
  lastEvent = (sandboxId: string) => this.events.lastEvent(sandboxId);
  listEvents = (sandboxId: string, afterSeq: number, limit?: number) =>
    this.events.listEvents(sandboxId, afterSeq, limit);
  upsertPort = (p: PortRecord) => this.ports.upsertPort(p);
  getPort = (sandboxId: string, port: number) => this.ports.getPort(sandboxId, port);
  listPorts = (sandboxId: string) => this.ports.listPorts(sandboxId);
  deletePort = (sandboxId: string, port: number) => this.ports.deletePort(sandboxId, port);
  deletePorts = (sandboxId: string) => this.ports.deletePorts(sandboxId);

  // Snapshots, volumes, replicas.
  insertSnapshot = (s: SnapshotRecord) => this.snapshots.insertSnapshot(s);
  getSnapshot = (id: string) => this.snapshots.getSnapshot(id);
  listSnapshots = (tenantId: string) => this.snapshots.listSnapshots(tenantId);
  deleteSnapshot = (id: string) => this.snapshots.deleteSnapshot(id);
  insertVolume = (v: VolumeRecord) => this.volumes.insertVolume(v);
  getVolumeByName = (tenantId: string, name: string) => this.volumes.getVolumeByName(tenantId, name);
  listVolumes = (tenantId: string) => this.volumes.listVolumes(tenantId);
  deleteVolume = (id: string) => this.volumes.deleteVolume(id);
  claimUnowned = (replica: string) => this.replicas.claimUnowned(replica);
  upsertReplica = (r: ReplicaRecord) => this.replicas.upsertReplica(r);
  getReplica = (id: string) => this.replicas.getReplica(id);
  countReplicas = () => this.replicas.countReplicas();
  replicaOf = (kind: "snapshots" | "volumes", id: string) => this.replicas.replicaOf(kind, id);
  setReplicaOf = (kind: "snapshots" | "volumes", id: string, replica: string) =>
    this.replicas.setReplicaOf(kind, id, replica);

  // Agent sessions, audit.
  insertSession = (s: SessionRecord) => this.sessions.insertSession(s);
  getSession = (id: string) => this.sessions.getSession(id);
  updateSession = (id: string, patch: SessionPatch) => this.sessions.updateSession(id, patch);
  listSessions = (q: { tenantId?: string; states?: SessionState[]; sandboxId?: string; limit?: number }) =>
    this.sessions.listSessions(q);
  countSessionsByState = () => this.sessions.countSessionsByState();
  appendSessionEvent = (e: Omit<SessionEvent, "seq">) => this.sessions.appendSessionEvent(e);
  listSessionEvents = (sessionId: string, afterSeq: number, limit?: number) =>
    this.sessions.listSessionEvents(sessionId, afterSeq, limit);
  appendAudit = (a: Omit<AuditRecord, "id">) => this.audit.appendAudit(a);
  listAudit = (q: { from?: string; to?: string; afterId?: number; limit: number }) => this.audit.listAudit(q);
}

/** The Store on any SQL database behind `Db` (SQLite and PostgreSQL run the same queries). */
export class SqlStore extends SqlRecords implements Store {
  constructor(private readonly db: Db) {
    super(db);
  }

  async migrate(): Promise<void> {
    await migrate(this.db);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
