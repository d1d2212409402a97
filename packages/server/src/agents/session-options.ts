import { type AgentOptions, type Config, InvalidRequestError, SETTINGS } from "@berth/core";
import type { AgentSpec, CreateSessionBody } from "@berth/core/contract";

/** What a client asks for in `POST /v1/sessions` (the contract's type). */
export type { CreateSessionBody };

/** The `agent` of a create call. */
export type AgentBody = AgentSpec;

/** A session's resolved options as a create call's `agent` again (for the session that resumes or forks it). */
export function agentBodyOf(o: AgentOptions): AgentBody {
  const { maxBudgetUsd, maxDurationSeconds, forkOf: _fork, ...rest } = o;
  return {
    ...rest,
    ...(maxBudgetUsd !== null ? { maxBudgetUsd } : {}),
    ...(maxDurationSeconds !== null ? { maxDurationSeconds } : {}),
  };
}

/** A session's agent options with the server's limits and defaults applied (400 for one out of bounds). */
export function resolveAgentOptions(c: Config, a: AgentBody): AgentOptions {
  const maxTurns = a.maxTurns ?? c.agentMaxTurnsDefault;
  // The schema checked the shapes; only the server's own maximum is left to check.
  if (maxTurns > c.agentMaxTurns)
    throw new InvalidRequestError(
      `agent.maxTurns must be 1..${c.agentMaxTurns} (${SETTINGS.agentMaxTurns.env}), got ${maxTurns}`,
      { field: "agent.maxTurns", max: c.agentMaxTurns },
    );
  return {
    ...a,
    maxTurns,
    maxBudgetUsd: a.maxBudgetUsd ?? null,
    maxDurationSeconds: a.maxDurationSeconds ?? null,
    cwd: a.cwd ?? "/home/user",
    env: a.env ?? {},
    idleSeconds: a.idleSeconds ?? c.agentIdleSeconds,
  };
}

/** Whether a session's options are the ones a warm-pool agent was started with (so it can take one). */
export function takesWarmStart(c: Config, o: AgentOptions): boolean {
  return (
    o.maxTurns === c.agentMaxTurnsDefault &&
    o.maxBudgetUsd === null &&
    Object.keys(o.env).length === 0 &&
    o.systemPrompt === undefined &&
    o.appendSystemPrompt === undefined &&
    o.allowedTools === undefined &&
    o.disallowedTools === undefined &&
    o.mcpServers === undefined &&
    // A parked process was started without the client's say over tool calls.
    (o.permissionMode ?? "bypassPermissions") === "bypassPermissions" &&
    o.hooks === undefined &&
    // ... nor with these, which are fixed when a process starts.
    o.outputFormat === undefined &&
    o.settingSources === undefined &&
    o.agents === undefined &&
    o.skills === undefined &&
    o.includePartialMessages === undefined
  );
}
