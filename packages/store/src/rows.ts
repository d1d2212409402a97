import type {
  ApiKeyRecord,
  AuditRecord,
  PortRecord,
  ProcessRecord,
  SandboxEvent,
  SandboxPatch,
  SandboxRecord,
  SnapshotRecord,
  VolumeRecord,
} from "@berth/core";

/** A database row as the driver returns it. */
export type Row = Record<string, unknown>;

const parse = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const int = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Patchable sandbox fields and their columns. */
export const COLUMN: Record<keyof SandboxPatch, { name: string; json: boolean }> = {
  tenantId: { name: "tenant_id", json: false },
  createdAt: { name: "created_at", json: false },
  state: { name: "state", json: false },
  network: { name: "network", json: true },
  labels: { name: "labels", json: true },
  idle: { name: "idle", json: true },
  timeoutSeconds: { name: "timeout_seconds", json: false },
  expiresAt: { name: "expires_at", json: false },
  lastActivityAt: { name: "last_activity_at", json: false },
  failureReason: { name: "failure_reason", json: false },
  runtimeInfo: { name: "runtime_info", json: true },
};

export function toSandbox(r: Row): SandboxRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    state: String(r.state) as SandboxRecord["state"],
    template: String(r.template),
    resources: parse(r.resources),
    network: parse(r.network),
    env: parse(r.env),
    labels: parse(r.labels),
    idle: r.idle === null || r.idle === undefined ? null : parse(r.idle),
    timeoutSeconds: int(r.timeout_seconds),
    createdAt: String(r.created_at),
    expiresAt: str(r.expires_at),
    lastActivityAt: String(r.last_activity_at),
    failureReason: str(r.failure_reason),
    runtimeInfo: parse(r.runtime_info),
    volumes: r.volumes === undefined || r.volumes === null ? [] : parse(r.volumes),
    replica: str(r.replica),
  };
}

export function toKey(r: Row): ApiKeyRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    hash: String(r.hash),
    admin: Boolean(Number(r.admin)),
    createdAt: String(r.created_at),
    revokedAt: str(r.revoked_at),
  };
}

export function toProcess(r: Row): ProcessRecord {
  return {
    sandboxId: String(r.sandbox_id),
    pid: Number(r.pid),
    cmd: parse(r.cmd),
    cwd: str(r.cwd),
    state: String(r.state) as ProcessRecord["state"],
    exitCode: int(r.exit_code),
    startedAt: String(r.started_at),
    exitedAt: str(r.exited_at),
  };
}

export function toSnapshot(r: Row): SnapshotRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    sandboxId: String(r.sandbox_id),
    name: str(r.name),
    template: String(r.template),
    resources: parse(r.resources),
    env: parse(r.env),
    sizeBytes: Number(r.size_bytes),
    createdAt: String(r.created_at),
  };
}

export function toPort(r: Row): PortRecord {
  return {
    sandboxId: String(r.sandbox_id),
    tenantId: String(r.tenant_id),
    port: Number(r.port),
    public: Boolean(Number(r.public)),
    tokenHash: str(r.token_hash),
    createdAt: String(r.created_at),
  };
}

export function toVolume(r: Row): VolumeRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    name: String(r.name),
    sizeMiB: Number(r.size_mib),
    createdAt: String(r.created_at),
  };
}

export function toEvent(r: Row): SandboxEvent {
  return {
    seq: Number(r.seq),
    sandboxId: String(r.sandbox_id),
    type: String(r.type),
    data: JSON.parse(String(r.data)),
    at: String(r.at),
  };
}

export function toAudit(r: Row): AuditRecord {
  return {
    id: Number(r.id),
    at: String(r.at),
    tenantId: r.tenant_id === null ? null : String(r.tenant_id),
    keyId: r.key_id === null ? null : String(r.key_id),
    method: String(r.method),
    path: String(r.path),
    status: Number(r.status),
    requestId: String(r.request_id),
  };
}
