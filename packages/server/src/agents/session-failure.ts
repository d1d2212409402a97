import type { SDKResultMessage } from "@anthropic-ai/claude-agent-sdk";
import { type Config, type Runtime, SETTINGS, type SessionFailure, type Store } from "@berth/core";
import type { ModelFailure } from "../gateway/gateway.js";

/** What a live run saw that explains how its turn ended. */
export interface TurnClues {
  /** The last refusal or upstream error the gateway reported since the last good answer. */
  model?: ModelFailure;
  /** The caller interrupted the turn. */
  interrupted?: boolean;
  /** The session's maxDurationSeconds ran out (its turn was interrupted for that). */
  deadline?: string;
}

/** The `model_unavailable` failure: no model key is configured (named so an operator can fix it). */
export function modelUnavailable(config: Pick<Config, "anthropicApiKey">): SessionFailure | null {
  if (config.anthropicApiKey) return null;
  return {
    code: "model_unavailable",
    message: `the server has no model API key: set ${SETTINGS.anthropicApiKey.env}`,
  };
}

/**
 * Why a turn that ended in an error result failed. The SDK alone cannot say: an upstream 400 or
 * 529 and a budget refusal all end as `success` with `is_error`, so what the gateway saw comes
 * first, after an interrupt and the SDK's own limits.
 */
export function failureOfResult(m: SDKResultMessage, clues: TurnClues): SessionFailure {
  if (clues.deadline) return { code: "max_duration", message: clues.deadline };
  if (clues.interrupted) return { code: "interrupted", message: "the turn was interrupted" };
  if (m.subtype === "error_max_turns")
    return { code: "max_turns", message: `the agent reached maxTurns (${m.num_turns} turns)` };
  // What the agent was told (for an API error, the SDK's "API Error: <status> <message>").
  const said = (m.subtype === "success" ? m.result : m.errors?.join("; "))?.slice(0, 300);
  if (clues.model)
    return {
      code: clues.model.code,
      // The upstream's own words are in what the agent was told; the gateway's refusals say enough.
      message:
        clues.model.code === "model_error" && said ? `${clues.model.message}: ${said}` : clues.model.message,
      ...(clues.model.upstreamStatus !== undefined ? { upstreamStatus: clues.model.upstreamStatus } : {}),
    };
  // No word from the gateway: the SDK's own record of the API error.
  const status = (m as { api_error_status?: unknown }).api_error_status;
  if (typeof status === "number" && status >= 400)
    return {
      code: "model_error",
      message: `the model answered HTTP ${status}${said ? `: ${said}` : ""}`,
      upstreamStatus: status,
    };
  if (m.subtype === "error_max_budget_usd")
    return { code: "budget_exceeded", message: "the session's maxBudgetUsd is spent" };
  return { code: "agent_error", message: `the agent's turn failed (${m.subtype}${said ? `: ${said}` : ""})` };
}

/**
 * Why an agent process ended that nobody stopped: its sandbox is gone (`sandbox_lost`), the
 * kernel's OOM killer fired in the sandbox since the run started (`oom`), or it failed on its own.
 */
export async function failureOfExit(
  d: { store: Store; runtime: Runtime },
  sandboxId: string,
  oomKillsAtStart: number | undefined,
  why: string,
): Promise<SessionFailure> {
  const sandbox = await d.store.getSandbox(sandboxId);
  const status = await d.runtime.inspect(sandboxId).catch(() => undefined);
  if (sandbox?.state !== "running" || status?.state !== "running")
    return {
      code: "sandbox_lost",
      message: `the session's sandbox is ${sandbox && sandbox.state !== "running" ? sandbox.state : "gone"}: ${why}`,
    };
  if (oomKillsAtStart !== undefined && status.oomKills > oomKillsAtStart)
    return {
      code: "oom",
      message: `the sandbox ran out of memory (its OOM killer fired ${status.oomKills - oomKillsAtStart} time(s)): ${why}`,
    };
  return { code: "agent_error", message: why };
}
