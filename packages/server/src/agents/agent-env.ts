import type { SandboxRecord } from "@berth/core";
import { processEnv } from "../sandboxes/sandbox-env.js";

/** Where sessions' own files (transcripts, config) live in a sandbox. */
export const SESSIONS_HOME = "/home/user/.berth/sessions";

/** A session's own directory: the home of a shared session's `claude` (its config and transcript). */
export function sessionHomeOf(sessionId: string): string {
  return `${SESSIONS_HOME}/${sessionId}`;
}

/**
 * The whole environment of a session's `claude` process: the sandbox's, the session's own, and
 * the model gateway (at the host's address on the sandbox's network) with the session's token as key.
 */
export function agentEnv(
  sandbox: SandboxRecord,
  o: {
    env: Record<string, string>;
    hostIp: string;
    gatewayPort: number;
    token: string;
    /** Its own home (shared sessions), so its `~/.claude` is its own; else the sandbox user's. */
    home?: string;
    /** The runtime driver's variables (Runtime.processEnv), so the agent's tools get them too. */
    driver?: Record<string, string>;
  },
): Record<string, string> {
  return processEnv(
    sandbox,
    {
      ...o.env,
      ...(o.home ? { HOME: o.home } : {}),
      ANTHROPIC_BASE_URL: `http://${o.hostIp}:${o.gatewayPort}`,
      ANTHROPIC_API_KEY: o.token,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
    o.driver,
  );
}
