import type { SandboxRecord } from "@berth/core";
import { processEnv } from "../sandboxes/sandbox-env.js";

/** Where sessions' own files (transcripts, config) live in a sandbox. */
export const SESSIONS_HOME = "/home/user/.berth/sessions";

/** Where every runtime driver binds berth-init in a sandbox. */
const SANDBOX_INIT = "/.berth/init";

/**
 * How the agent runs its shell tools (Claude Code's `CLAUDE_CODE_SHELL_PREFIX`): through
 * berth-init's `--tool` mode, which makes each command the OOM killer's first choice, so a tool
 * that exhausts the sandbox's memory is killed and the agent lives on.
 */
export const TOOL_SHELL_PREFIX = `${SANDBOX_INIT} --tool`;

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
      // The session's own env may name a prefix of its own (its tools then lose the OOM mark).
      CLAUDE_CODE_SHELL_PREFIX: TOOL_SHELL_PREFIX,
      ...o.env,
      ...(o.home ? { HOME: o.home } : {}),
      ANTHROPIC_BASE_URL: `http://${o.hostIp}:${o.gatewayPort}`,
      ANTHROPIC_API_KEY: o.token,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
    o.driver,
  );
}
