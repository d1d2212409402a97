/**
 * A compile-time check that the SDK's public types are the contract's: `tsc -b` (so `npm run
 * check`) fails when one of them is written by hand again and drifts from its schema.
 */
import type * as contract from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type * as sdk from "./index.js";

/** True only when A and B are the same type (assignable both ways is not enough). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only for `true`. */
type Check<T extends true> = T;

/** Each SDK type beside the contract schema it must equal. */
export type SdkMatchesContract = [
  Check<Same<sdk.SandboxView, Static<typeof contract.Sandbox>>>,
  Check<Same<sdk.SandboxCreateOptions, Static<typeof contract.CreateSandboxBody>>>,
  Check<Same<sdk.Resources, Static<typeof contract.Resources>>>,
  Check<Same<sdk.NetworkPolicy, Static<typeof contract.NetworkPolicy>>>,
  Check<Same<sdk.IdlePolicy, Static<typeof contract.IdlePolicy>>>,
  Check<Same<sdk.SandboxState, (typeof contract.SANDBOX_STATES)[number]>>,
  Check<Same<sdk.ExecResult, Static<typeof contract.ExecResult>>>,
  Check<Same<sdk.ProcessInfo, Static<typeof contract.ProcessInfo>>>,
  Check<Same<sdk.ProcessLogs, Static<typeof contract.ProcessLogs>>>,
  Check<Same<sdk.StdinResult, Static<typeof contract.StdinResult>>>,
  Check<Same<sdk.FileEntry, Static<typeof contract.FileEntry>>>,
  Check<Same<sdk.TenantInfo, Static<typeof contract.TenantInfo>>>,
  Check<Same<sdk.ApiKeyInfo, Static<typeof contract.ApiKeyInfo>>>,
  Check<Same<sdk.PortInfo, Static<typeof contract.Port>>>,
  Check<Same<sdk.ExposedPort, Static<typeof contract.ExposedPort>>>,
  Check<Same<sdk.TemplateInfo, Static<typeof contract.Template>>>,
  Check<Same<sdk.SessionView, Static<typeof contract.Session>>>,
  Check<Same<sdk.SessionSpec, Static<typeof contract.CreateSessionBody>>>,
  Check<Same<sdk.AgentSpec, Static<typeof contract.AgentSpec>>>,
  Check<Same<sdk.PermissionAnswer, Static<typeof contract.PermissionAnswerBody>>>,
  Check<Same<sdk.SessionFailure, Static<typeof contract.SessionFailure>>>,
  Check<Same<sdk.SessionState, (typeof contract.SESSION_STATES)[number]>>,
  Check<Same<sdk.SessionPattern, (typeof contract.SESSION_PATTERNS)[number]>>,
  Check<Same<sdk.SnapshotInfo, Static<typeof contract.Snapshot>>>,
  Check<Same<sdk.VolumeInfo, Static<typeof contract.Volume>>>,
  Check<Same<sdk.UsageRow, Static<typeof contract.UsageRow>>>,
  Check<Same<sdk.UsageGroup, (typeof contract.USAGE_GROUPS)[number]>>,
  Check<Same<sdk.SandboxMetrics, Static<typeof contract.SandboxMetrics>>>,
  Check<Same<sdk.AuditEntry, Static<typeof contract.AuditEntry>>>,
  Check<Same<sdk.SandboxUpdate, Static<typeof contract.PatchSandboxBody>>>,
];
