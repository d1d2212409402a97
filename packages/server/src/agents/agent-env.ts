import type { SandboxRecord } from "@berth/core";
import { processEnv } from "../sandboxes/sandbox-env.js";

/** Where sessions' own files (transcripts, config) live in a sandbox. */
export const SESSIONS_HOME = "/home/user/.berth/sessions";

/** The config dir of one session's `claude` (its transcript: what `resume` reads). */
export function configDirOf(sessionId: string): string {
  return `${SESSIONS_HOME}/${sessionId}`;
}

/**
 * The whole environment of a session's `claude` process: the sandbox's, the session's own, and
 * the model gateway (at the host's address on the sandbox's network) with the session's token as key.
 */
export function agentEnv(
  sandbox: SandboxRecord,
  o: { sessionId: string; env: Record<string, string>; hostIp: string; gatewayPort: number; token: string },
): Record<string, string> {
  return processEnv(sandbox, {
    ...o.env,
    ANTHROPIC_BASE_URL: `http://${o.hostIp}:${o.gatewayPort}`,
    ANTHROPIC_API_KEY: o.token,
    CLAUDE_CONFIG_DIR: configDirOf(o.sessionId),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
  });
}
