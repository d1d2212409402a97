/**
 * The SDK's wire types: each is the `Static<>` type of its schema in the contract
 * (`@berth/core/contract`), so a field added there appears here; contract-types.ts makes the
 * compiler check that they stay so.
 */

import type { IdlePolicy, NetworkPolicy, Resources, SandboxState, SandboxView } from "@berth/core";
import type {
  ApiKeyInfo as ApiKeyInfoSchema,
  CreateSandboxBody,
  ExecResult as ExecResultSchema,
  FileEntry as FileEntrySchema,
  ProcessInfo as ProcessInfoSchema,
  ProcessLogs as ProcessLogsSchema,
  StdinResult as StdinResultSchema,
  TenantInfo as TenantInfoSchema,
} from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";

export type { IdlePolicy, NetworkPolicy, Resources, SandboxState, SandboxView };

/** Body of `POST /v1/sandboxes`; every field optional. */
export type SandboxCreateOptions = CreateSandboxBody;

/** Filters of `Sandbox.list`. */
export interface SandboxListFilter {
  state?: SandboxState;
  labels?: Record<string, string>;
}

/** The answer of a finished command. */
export type ExecResult = Static<typeof ExecResultSchema>;

/** Options of `sandbox.exec`. With `onStdout`/`onStderr` the output streams over SSE. */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
  /** `root` only in a sandbox created with `root: true` (else 403 `forbidden`). */
  user?: "user" | "root";
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  signal?: AbortSignal;
}

/** A background process started through the API. */
export type ProcessInfo = Static<typeof ProcessInfoSchema>;

/** Collected output of a background process. */
export type ProcessLogs = Static<typeof ProcessLogsSchema>;
/** What a stdin write did: bytes written, and whether stdin is now closed. */
export type StdinResult = Static<typeof StdinResultSchema>;

/** One entry of a directory listing. */
export type FileEntry = Static<typeof FileEntrySchema>;

/** A tenant, its monthly model budget and what it spent this month. */
export type TenantInfo = Static<typeof TenantInfoSchema>;

/** An API key as `POST /v1/keys` returns it; `key` is shown only then. */
export type ApiKeyInfo = Static<typeof ApiKeyInfoSchema>;
