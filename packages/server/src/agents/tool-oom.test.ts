import type { SDKMessage } from "@anthropic-ai/claude-agent-sdk";
import type { Runtime } from "@berth/core";
import { describe, expect, it } from "vitest";
import { ToolOomWatch } from "./tool-oom.js";

/** The one thing the watch asks a runtime: the sandbox's OOM kill counter, set by the test. */
function counter() {
  const c = { kills: 0 };
  const runtime = { inspect: async () => ({ state: "running", oomKills: c.kills }) } as unknown as Runtime;
  return { c, runtime };
}

const toolUse = (id: string, name: string) =>
  ({
    type: "assistant",
    message: { content: [{ type: "tool_use", id, name, input: {} }] },
  }) as unknown as SDKMessage;
const toolResult = (...ids: Array<[string, boolean]>) =>
  ({
    type: "user",
    message: { content: ids.map(([id, err]) => ({ type: "tool_result", tool_use_id: id, is_error: err })) },
  }) as unknown as SDKMessage;
const result = { type: "result" } as unknown as SDKMessage;

describe("ToolOomWatch", () => {
  it("puts a kill seen with a tool's result on that tool, once; the failed one of several results", async () => {
    const { c, runtime } = counter();
    c.kills = 2; // kills from before the run are not this run's
    const w = new ToolOomWatch(runtime, "sbx", 2);
    expect(await w.check(toolUse("a", "Bash"))).toBeNull();
    expect(await w.check(toolUse("b", "Read"))).toBeNull();
    c.kills = 3;
    expect(await w.check(toolResult(["b", false], ["a", true]))).toEqual({
      kills: 1,
      tool: "Bash",
      toolUseId: "a",
    });
    expect(await w.check(result)).toBeNull();
    expect(w.oomKills).toBe(3);
  });

  it("a kill seen only at the turn's end has no tool; an unknown start counts nothing", async () => {
    const { c, runtime } = counter();
    const w = new ToolOomWatch(runtime, "sbx", 0);
    c.kills = 2;
    expect(await w.check(result)).toEqual({ kills: 2 });
    const unknown = new ToolOomWatch(runtime, "sbx", undefined);
    expect(await unknown.check(result)).toBeNull();
    c.kills = 3;
    expect(await unknown.check(result)).toEqual({ kills: 1 });
  });
});
