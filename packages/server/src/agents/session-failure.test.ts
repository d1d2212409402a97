import type { SDKResultMessage } from "@anthropic-ai/claude-agent-sdk";
import { describe, expect, it } from "vitest";
import { failureOfResult, modelUnavailable } from "./session-failure.js";

/** A result message as the SDK sends it, with only the fields read here filled in. */
function result(over: Record<string, unknown>): SDKResultMessage {
  return { type: "result", subtype: "success", is_error: true, num_turns: 1, result: "", ...over } as never;
}

describe("failureOfResult", () => {
  it("an upstream error the gateway saw is model_error with its status and what the agent was told", () => {
    const f = failureOfResult(result({ result: "API Error: 529 Overloaded" }), {
      model: { code: "model_error", message: "the model answered HTTP 529", upstreamStatus: 529 },
    });
    expect(f).toEqual({
      code: "model_error",
      message: "the model answered HTTP 529: API Error: 529 Overloaded",
      upstreamStatus: 529,
    });
  });

  it("a budget refusal keeps the gateway's message (the SDK calls that turn a success)", () => {
    const f = failureOfResult(result({ result: "API Error: 402 ..." }), {
      model: { code: "budget_exceeded", message: "Berth: this session's budget cannot cover this request" },
    });
    expect(f).toEqual({
      code: "budget_exceeded",
      message: "Berth: this session's budget cannot cover this request",
    });
  });

  it("the deadline, then an interrupt, then the turn limit come before what the gateway saw", () => {
    const model = { code: "model_error" as const, message: "x", upstreamStatus: 500 };
    const maxTurns = result({ subtype: "error_max_turns", errors: [] });
    expect(failureOfResult(maxTurns, { model, interrupted: true, deadline: "late" }).code).toBe(
      "max_duration",
    );
    expect(failureOfResult(maxTurns, { model, interrupted: true }).code).toBe("interrupted");
    expect(failureOfResult(maxTurns, { model }).code).toBe("max_turns");
  });

  it("without word from the gateway: the SDK's api_error_status, its budget stop, else agent_error", () => {
    expect(failureOfResult(result({ api_error_status: 400, result: "API Error: 400 bad" }), {})).toEqual({
      code: "model_error",
      message: "the model answered HTTP 400: API Error: 400 bad",
      upstreamStatus: 400,
    });
    expect(failureOfResult(result({ subtype: "error_max_budget_usd", errors: [] }), {}).code).toBe(
      "budget_exceeded",
    );
    const other = failureOfResult(
      result({ subtype: "error_during_execution", errors: ["tool crashed"] }),
      {},
    );
    expect(other).toEqual({
      code: "agent_error",
      message: "the agent's turn failed (error_during_execution: tool crashed)",
    });
  });
});

describe("modelUnavailable", () => {
  it("names the setting when no model key is configured, and is null with one", () => {
    expect(modelUnavailable({ anthropicApiKey: undefined })?.message).toContain("BERTH_ANTHROPIC_API_KEY");
    expect(modelUnavailable({ anthropicApiKey: "sk-ant-x" })).toBeNull();
  });
});
