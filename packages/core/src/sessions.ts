import type {
  PERMISSION_MODES,
  SessionFailure,
  SessionPattern,
  SessionState,
  SessionUsage,
} from "./contract/sessions.js";
import { newId } from "./ids.js";

export {
  SESSION_FAILURE_CODES,
  SESSION_PATTERNS,
  SESSION_STATES,
  type SessionFailure,
  type SessionFailureCode,
  type SessionPattern,
  type SessionState,
  type SessionUsage,
  type ToolOomData,
} from "./contract/sessions.js";

/** States a session does not leave. */
export const FINAL_SESSION_STATES: SessionState[] = ["completed", "failed", "cancelled"];

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
  permissionMode?: (typeof PERMISSION_MODES)[number];
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

/** An agent session: a Claude Agent SDK conversation bound to a sandbox. */
export interface SessionRecord {
  id: string;
  tenantId: string;
  sandboxId: string;
  pattern: SessionPattern;
  state: SessionState;
  /** The SDK's session id (from its `system/init` message); used to resume. */
  agentSessionId: string | null;
  /** The first user message, as given at create (null for sessions made before it was kept). */
  prompt: string | null;
  /** Where its events are POSTed, and the sealed key that signs them (null: no webhooks). */
  webhooks: SessionWebhooks | null;
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

/** A session's webhook receivers and the key of their signatures, sealed with the server secret. */
export interface SessionWebhooks {
  targets: { url: string; events: SessionEventType[] }[];
  sealedSecret: string;
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
 * change, a tool call waiting for the client's answer and how it was settled, a webhook
 * delivery given up after its last attempt, a tool killed for running the sandbox out of memory
 * (`tool_oom`).
 */
export type SessionEventType =
  | "message"
  | "user_message"
  | "state"
  | "permission_request"
  | "permission_resolved"
  | "webhook_failed"
  | "tool_oom";

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
