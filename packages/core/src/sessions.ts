import { newId } from "./ids.js";

/** How a session uses its sandbox (the Agent SDK hosting guide's four patterns). */
export const SESSION_PATTERNS = ["ephemeral", "long-running", "hybrid", "shared"] as const;
export type SessionPattern = (typeof SESSION_PATTERNS)[number];

/** Where an agent session is in its life. */
export const SESSION_STATES = [
  "starting",
  "running",
  "idle",
  "hibernated",
  "completed",
  "failed",
  "cancelled",
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** States a session does not leave. */
export const FINAL_SESSION_STATES: SessionState[] = ["completed", "failed", "cancelled"];

/** Token counts of a session, as the model gateway read them from the responses. */
export interface SessionUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

/** The agent options of a session, as resolved by the server (limits applied). */
export interface AgentOptions {
  maxTurns: number;
  maxBudgetUsd: number | null;
  maxDurationSeconds: number | null;
  model?: string;
  systemPrompt?: string;
  appendSystemPrompt?: string;
  allowedTools?: string[];
  disallowedTools?: string[];
  permissionMode?: string;
  cwd: string;
  mcpServers?: Record<string, unknown>;
  env: Record<string, string>;
  /** Hybrid: seconds without messages before the sandbox hibernates. */
  idleSeconds?: number;
  /** Hooks the client answers: each `PreToolUse` matcher (a tool name pattern; none: every tool). */
  hooks?: { PreToolUse?: { matcher?: string }[] };
  /** A JSON Schema the final answer must satisfy (the result's `structured_output`). */
  outputFormat?: { type: "json_schema"; schema: Record<string, unknown> };
  /** Which settings files `claude` reads in its sandbox (none unless asked). */
  settingSources?: ("user" | "project" | "local")[];
  /** Subagents the agent may hand work to, by name. */
  agents?: Record<string, AgentDefinitionOption>;
  /** Skills the agent may use: `all`, or the names of installed or uploaded ones. */
  skills?: string[] | "all";
  /** Partial assistant messages (`stream_event` deltas) as events too. */
  includePartialMessages?: boolean;
  /** A fork: the SDK session it branches off (its first start forks it; later ones resume its own). */
  forkOf?: string;
}

/** A subagent (the Agent SDK's AgentDefinition, the fields a client may set). */
export interface AgentDefinitionOption {
  description: string;
  prompt: string;
  tools?: string[];
  disallowedTools?: string[];
  model?: string;
  maxTurns?: number;
}

/**
 * Why a session (or, for one that lives on, its last turn) failed. Stable codes a program can
 * act on; the message is for a person.
 */
export const SESSION_FAILURE_CODES = [
  "budget_exceeded",
  "max_turns",
  "max_duration",
  "model_error",
  "model_unavailable",
  "oom",
  "sandbox_lost",
  "server_restart",
  "interrupted",
  "agent_error",
] as const;
export type SessionFailureCode = (typeof SESSION_FAILURE_CODES)[number];

/** A session's failure: its code, a message, and for `model_error` the upstream's HTTP status. */
export interface SessionFailure {
  code: SessionFailureCode;
  message: string;
  upstreamStatus?: number;
}

/** An agent session: a Claude Agent SDK conversation bound to a sandbox. */
export interface SessionRecord {
  id: string;
  tenantId: string;
  sandboxId: string;
  pattern: SessionPattern;
  state: SessionState;
  /** The SDK's session id (from its `system/init` message); used to resume. */
  agentSessionId: string | null;
  options: AgentOptions;
  turns: number;
  usage: SessionUsage;
  tokensUsd: number;
  /** The SDK's result message (null until one arrives). */
  result: Record<string, unknown> | null;
  failureReason: string | null;
  /** Why it ended failed or cancelled, or why its last turn failed (null after a turn that succeeded). */
  failure: SessionFailure | null;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
}

export type SessionPatch = Partial<
  Pick<
    SessionRecord,
    | "state"
    | "agentSessionId"
    | "turns"
    | "usage"
    | "tokensUsd"
    | "result"
    | "failureReason"
    | "failure"
    | "endedAt"
  >
>;

/**
 * Kinds of session events: an SDK message, a message the user sent (`{text}`), a lifecycle
 * change, a tool call waiting for the client's answer and how it was settled.
 */
export type SessionEventType =
  | "message"
  | "user_message"
  | "state"
  | "permission_request"
  | "permission_resolved";

/** One stored event of a session: an SDK message (`message`), a lifecycle change (`state`), a permission request. */
export interface SessionEvent {
  seq: number;
  sessionId: string;
  type: SessionEventType;
  data: Record<string, unknown>;
  at: string;
}

/** New session ids: `ses_` and random characters. */
export function newSessionId(): string {
  return newId("ses_");
}
