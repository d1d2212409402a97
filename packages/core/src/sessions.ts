import type { SessionFailure, SessionPattern, SessionState, SessionUsage } from "./contract/sessions.js";
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
  permissionMode?: string;
  cwd: string;
  mcpServers?: Record<string, unknown>;
  env: Record<string, string>;
  /** Hybrid: seconds without messages before the sandbox hibernates. */
  idleSeconds?: number;
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

/** One stored event of a session: an SDK message (`message`) or a lifecycle change (`state`). */
export interface SessionEvent {
  seq: number;
  sessionId: string;
  type: "message" | "state";
  data: Record<string, unknown>;
  at: string;
}

/** New session ids: `ses_` and random characters. */
export function newSessionId(): string {
  return newId("ses_");
}
