import type { IdlePolicy, NetworkPolicy, Resources, SandboxState, SandboxView } from "@berth/core";

export type { IdlePolicy, NetworkPolicy, Resources, SandboxState, SandboxView };

/** Body of `POST /v1/sandboxes`; every field optional. */
export interface SandboxCreateOptions {
  template?: string;
  resources?: Partial<Resources>;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  timeoutSeconds?: number;
  idle?: IdlePolicy;
  network?: Partial<NetworkPolicy>;
  fromSnapshot?: string;
  volumes?: { name: string; mountPath: string }[];
}

/** Filters of `Sandbox.list`. */
export interface SandboxListFilter {
  state?: SandboxState;
  labels?: Record<string, string>;
}

/** The answer of a finished command. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  truncated?: boolean;
}

/** Options of `sandbox.exec`. With `onStdout`/`onStderr` the output streams over SSE. */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
  user?: string;
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  signal?: AbortSignal;
}

/** A background process started through the API. */
export interface ProcessInfo {
  pid: number;
  cmd: string[];
  cwd: string | null;
  state: "running" | "exited";
  exitCode: number | null;
  startedAt: string;
  exitedAt: string | null;
}

/** Collected output of a background process. */
export interface ProcessLogs {
  pid: number;
  stdout: string;
  stderr: string;
  state: "running" | "exited";
  exitCode: number | null;
}

/** One entry of a directory listing. */
export interface FileEntry {
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number;
  mtime: string;
}

/** An API key as `POST /v1/keys` returns it; `key` is shown only then. */
/** A tenant, its monthly model budget and what it spent this month. */
export interface TenantInfo {
  id: string;
  createdAt: string;
  /** USD per calendar month (UTC) the tenant's sessions may spend on model tokens; null: no cap. */
  monthlyBudgetUsd: number | null;
  /** The month `spentUsd` covers, `YYYY-MM`. */
  month: string;
  spentUsd: number;
}

export interface ApiKeyInfo {
  id: string;
  key?: string;
  tenant: string;
  admin: boolean;
  createdAt: string;
}
