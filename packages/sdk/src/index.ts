/** @berth/sdk: the TypeScript client of Berth. */
export { Audit, type AuditEntry, type AuditOptions } from "./audit.js";
export {
  BerthClient,
  type CallOptions,
  errorFromResponse,
  type Query,
  type RequestOptions,
  type StreamOptions,
} from "./client.js";
export { type ConnectionOptions, resolveApiKey, resolveApiUrl } from "./config.js";
export * from "./errors.js";
export { type FileChange, type FileData, Files } from "./files.js";
export { Keys } from "./keys.js";
export {
  type ManagedAgentInfo,
  type ManagedAgentItem,
  type ManagedAgentSpec,
  ManagedAgents,
} from "./managed-agents.js";
export { type ExposedPort, type PortInfo, Ports } from "./ports.js";
export { type LogsOptions, Processes } from "./processes.js";
export { Pty, type PtyOptions } from "./pty.js";
export {
  Sandbox,
  type SandboxConnectOptions,
  type SandboxEvent,
  type SandboxMetrics,
  type SandboxUpdate,
} from "./sandbox.js";
export {
  type AgentSpec,
  type PermissionAnswer,
  type SessionEvent,
  type SessionFailure,
  type SessionPattern,
  type SessionSpec,
  type SessionState,
  Sessions,
  type SessionView,
} from "./sessions.js";
export { readSkillFolder, type SkillFolder } from "./skills.js";
export { type SnapshotInfo, Snapshots } from "./snapshots.js";
export { type SseEvent, SseParser } from "./sse.js";
export {
  type BuildOptions,
  type BuildProgress,
  type ImportOptions,
  type TemplateFormat,
  type TemplateInfo,
  Templates,
} from "./templates.js";
export { Tenants } from "./tenants.js";
export * from "./types.js";
export { Usage, type UsageGroup, type UsageOptions, type UsageRow } from "./usage.js";
export { type VolumeInfo, Volumes } from "./volumes.js";
