/**
 * A tool that runs the sandbox out of memory, end to end: the real Claude Agent SDK in the
 * server, the real `claude` binary in a real runc sandbox with a 512 MiB memory limit, and a
 * FAKE model server (test/fixtures/fake-model) as the only stand-in. The agent's Bash commands
 * run as the OOM killer's first choice (berth-init --tool), so the kernel kills the tool, the
 * session says so with a `tool_oom` event, and the agent answers in the same turn and the next.
 * An agent killed anyway (here: a tool makes it the first choice) fails its turn with `oom`.
 */
import { describe, expect, it } from "vitest";
import { isToolResult, lastUserText } from "../fixtures/fake-model/server.js";
import { useAgentServer } from "../support/agent-server.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

const agent = useAgentServer("oom");
const { scripts, call } = agent;
const until = (id: string, states: string[]) => agent.until(id, states, 120_000);

/**
 * Six `tail`s that each keep a "line" of zeros (no newline ever comes) in memory, growing until
 * killed, like the jobs of a parallel build. Each stays smaller than `claude`, so without the
 * OOM mark the kernel's largest-process rule would kill the agent. Exits 137 if any was killed.
 */
const EXHAUST =
  'pids=""; for i in 1 2 3 4 5 6; do (head -c 2000m /dev/zero | tail) & pids="$pids $!"; done; s=0; for p in $pids; do wait $p || s=$?; done; exit $s';
/** Enough for `claude` (~250 MiB) with room to spare, far below what EXHAUST takes. */
const SANDBOX = { resources: { memoryMiB: 512 } };

/** The first turn runs one Bash `command` then answers; a later message ("... next") is answered at once. */
function bashThenAnswer(command: string, answer: string) {
  return (body: any) => {
    if (isToolResult(body)) return { kind: "text" as const, text: `${answer} after the tool` };
    if (lastUserText(body).endsWith(" next")) return { kind: "text" as const, text: `${answer} again` };
    return { kind: "tool_use" as const, name: "Bash", input: { command, description: "work" } };
  };
}

const eventsOf = async (id: string) =>
  (
    await readSse(
      `${agent.server.url}/v1/sessions/${id}/events`,
      { headers: { authorization: `Bearer ${agent.server.adminKey}` } },
      { timeoutMs: 3_000 },
    )
  ).events;

describe("a tool that runs the sandbox out of memory", () => {
  it("is killed, not the agent: a tool_oom event names the Bash call, the agent answers in the same turn and the next", async () => {
    const marker = `oom-tool-${Date.now()}`;
    scripts.set(marker, bashThenAnswer(EXHAUST, `alive ${marker}`));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      sandbox: SANDBOX,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, sandboxId } = created.body;
    try {
      const s = await until(id, ["idle", "failed"]);
      // The model's answer after the tool's result came from the same process: the agent lived.
      expect(s.state, JSON.stringify(s)).toBe("idle");
      expect(s.failure, JSON.stringify(s)).toBeNull();
      expect(s.result?.result).toBe(`alive ${marker} after the tool`);
      const events = await eventsOf(id);
      const oom = events.filter((e) => e.event === "tool_oom");
      expect(oom.length, JSON.stringify(events.map((e) => e.event))).toBe(1);
      expect(oom[0]?.data.tool).toBe("Bash");
      expect(oom[0]?.data.kills).toBeGreaterThanOrEqual(1);
      // It names the call whose result showed the kill, and comes before the model's answer to it.
      const toolResult = events.find(
        (e) =>
          e.event === "message" &&
          e.data.type === "user" &&
          e.data.message.content.some?.((b: any) => b.type === "tool_result"),
      );
      const block = toolResult?.data.message.content.find((b: any) => b.type === "tool_result");
      expect(block?.tool_use_id).toBe(oom[0]?.data.toolUseId);
      expect(block?.is_error, JSON.stringify(block)).toBe(true);
      const oomAt = events.indexOf(oom[0] as (typeof events)[number]);
      const resultAt = events.findIndex((e) => e.event === "message" && e.data.type === "result");
      expect(oomAt).toBeLessThan(resultAt);
      // The sandbox's own counter agrees (one OOM kill), and the next turn is answered.
      const sent = await call("POST", `/v1/sessions/${id}/messages`, { text: `${marker} next` });
      expect(sent.status, JSON.stringify(sent.body)).toBe(202);
      const next = await waitFor(
        "the second turn's answer",
        async () => (await call("GET", `/v1/sessions/${id}`)).body,
        (x) => x.state === "idle" && x.result?.result === `alive ${marker} again`,
        { timeoutMs: 90_000 },
      );
      expect(next.failure).toBeNull();
    } finally {
      await call("DELETE", `/v1/sessions/${id}`);
      await call("DELETE", `/v1/sandboxes/${sandboxId}?force=true`);
    }
  }, 240_000);

  it("an agent killed anyway (a tool made it the first choice) fails its turn with oom", async () => {
    const marker = `oom-agent-${Date.now()}`;
    // Same uid: a tool may raise the agent's oom_score_adj, and lower its own back to the floor.
    const command = `echo 1000 > /proc/$(pgrep -o -x claude)/oom_score_adj && echo 0 > /proc/self/oom_score_adj && (${EXHAUST})`;
    scripts.set(marker, bashThenAnswer(command, `unexpected ${marker}`));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      sandbox: SANDBOX,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, sandboxId } = created.body;
    try {
      const s = await waitFor(
        "the session to note its failure",
        async () => (await call("GET", `/v1/sessions/${id}`)).body,
        (x) => x.state === "failed" || (x.state === "idle" && x.failure),
        { timeoutMs: 120_000 },
      );
      expect(s.failure?.code, JSON.stringify(s)).toBe("oom");
    } finally {
      await call("DELETE", `/v1/sessions/${id}`);
      await call("DELETE", `/v1/sandboxes/${sandboxId}?force=true`);
    }
  }, 240_000);
});
