/**
 * The client's control over a session's tool calls, end to end: the real Claude Agent SDK in the
 * server, the real `claude` binary in a real runc sandbox, and a FAKE model server
 * (test/fixtures/fake-model) as the only stand-in. With `permissionMode: "default"` each Bash
 * call waits as a `permission_request` event until the client allows or denies it over HTTP (or
 * the timeout denies it); a `PreToolUse` hook goes through the same channel.
 */
import { describe, expect, it } from "vitest";
import { isToolResult } from "../fixtures/fake-model/server.js";
import { useAgentServer } from "../support/agent-server.js";
import { readSse, type SseEvent } from "../support/sse.js";

const TIMEOUT_SECONDS = 8;

const agent = useAgentServer("control", { BERTH_AGENT_PERMISSION_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) });
const { scripts, call } = agent;
const until = (id: string, states: string[]) => agent.until(id, states);

/** The session's events after `after` until one `until` accepts (or the session's stream ends). */
async function nextEvent(id: string, after: string | undefined, until: (e: SseEvent) => boolean) {
  const r = await readSse(
    `${agent.server.url}/v1/sessions/${id}/events`,
    {
      headers: {
        authorization: `Bearer ${agent.server.adminKey}`,
        ...(after ? { "last-event-id": after } : {}),
      },
    },
    { until, timeoutMs: 90_000 },
  );
  const e = r.events.at(-1);
  if (!e || !until(e)) throw new Error(`no such event; saw ${JSON.stringify(r.events.map((x) => x.event))}`);
  return e;
}

/** Two Bash calls, one after the other: the first writes `approved`, the second `denied`. */
function twoBashCalls(marker: string) {
  return (body: any) => {
    const results = (body.messages as any[]).filter(
      (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
    ).length;
    if (results === 0)
      return {
        kind: "tool_use" as const,
        name: "Bash",
        input: { command: `echo yes > /home/user/${marker}-approved`, description: "first" },
      };
    if (results === 1)
      return {
        kind: "tool_use" as const,
        name: "Bash",
        input: { command: `echo yes > /home/user/${marker}-denied`, description: "second" },
      };
    return { kind: "text" as const, text: "both asked" };
  };
}

const exists = async (sandboxId: string, path: string) =>
  (await call("POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["test", "-e", path] })).body.exitCode === 0;

describe("client control of tool calls", () => {
  it("permissionMode default: one Bash call approved and one denied through the permissions endpoint", async () => {
    const marker = `perm-${Date.now()}`;
    scripts.set(marker, twoBashCalls(marker));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      agent: { permissionMode: "default" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const first = await nextEvent(id, undefined, (e) => e.event === "permission_request");
    expect(first.data).toMatchObject({ tool: "Bash", source: "permission" });
    expect(first.data.input.command).toContain(`${marker}-approved`);
    // Waiting for the answer is part of the turn: the session is running.
    expect((await call("GET", `/v1/sessions/${id}`)).body.state).toBe("running");
    const allow = await call("POST", `/v1/sessions/${id}/permissions/${first.data.id}`, {
      behavior: "allow",
    });
    expect(allow.status, JSON.stringify(allow.body)).toBe(202);
    // A second answer to the same request is a conflict; an unknown request is 404.
    const again = await call("POST", `/v1/sessions/${id}/permissions/${first.data.id}`, { behavior: "deny" });
    expect(again.status).toBe(409);
    const unknown = await call("POST", `/v1/sessions/${id}/permissions/perm_nope`, { behavior: "allow" });
    expect(unknown.status).toBe(404);
    const bad = await call("POST", `/v1/sessions/${id}/permissions/${first.data.id}`, { behavior: "maybe" });
    expect(bad.status).toBe(400);

    const second = await nextEvent(id, first.id, (e) => e.event === "permission_request");
    expect(second.data.input.command).toContain(`${marker}-denied`);
    const deny = await call("POST", `/v1/sessions/${id}/permissions/${second.data.id}`, {
      behavior: "deny",
      message: `not that one ${marker}`,
    });
    expect(deny.status).toBe(202);
    const done = await until(id, ["idle", "failed"]);
    expect(done.result.result).toBe("both asked");
    expect(await exists(done.sandboxId, `/home/user/${marker}-approved`)).toBe(true);
    expect(await exists(done.sandboxId, `/home/user/${marker}-denied`)).toBe(false);
    // The model was told why the second call did not run.
    const told = agent.model
      .turns()
      .filter((t) => isToolResult(t.body) && JSON.stringify(t.body).includes(marker))
      .some((t) => JSON.stringify(t.body.messages.at(-1)).includes(`not that one ${marker}`));
    expect(told).toBe(true);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${done.sandboxId}`);
  }, 150_000);

  it("a permission request nobody answers is denied when its timeout passes", async () => {
    const marker = `perm-timeout-${Date.now()}`;
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "went on" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: `echo yes > /home/user/${marker}`, description: "unanswered" },
          },
    );
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      agent: { permissionMode: "default" },
    });
    const id = created.body.id;
    const asked = await nextEvent(id, undefined, (e) => e.event === "permission_request");
    const settled = await nextEvent(id, asked.id, (e) => e.event === "permission_resolved");
    expect(settled.data).toMatchObject({ id: asked.data.id, behavior: "deny", by: "timeout" });
    const done = await until(id, ["idle", "failed"]);
    expect(done.result.result).toBe("went on");
    expect(await exists(done.sandboxId, `/home/user/${marker}`)).toBe(false);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${done.sandboxId}`);
  }, 150_000);

  it("a PreToolUse hook asks the client through the same channel, and its deny stops the call", async () => {
    const marker = `hook-${Date.now()}`;
    scripts.set(marker, twoBashCalls(marker));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      agent: { hooks: { PreToolUse: [{ matcher: "Bash" }] } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const first = await nextEvent(id, undefined, (e) => e.event === "permission_request");
    expect(first.data).toMatchObject({ tool: "Bash", source: "pre_tool_use" });
    await call("POST", `/v1/sessions/${id}/permissions/${first.data.id}`, { behavior: "allow" });
    const second = await nextEvent(id, first.id, (e) => e.event === "permission_request");
    await call("POST", `/v1/sessions/${id}/permissions/${second.data.id}`, {
      behavior: "deny",
      message: "hook said no",
    });
    const done = await until(id, ["idle", "failed"]);
    expect(await exists(done.sandboxId, `/home/user/${marker}-approved`)).toBe(true);
    expect(await exists(done.sandboxId, `/home/user/${marker}-denied`)).toBe(false);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${done.sandboxId}`);
  }, 150_000);

  it("outputFormat: the structured result, valid against its schema, is on the session", async () => {
    const marker = `structured-${Date.now()}`;
    const answer = { failing: ["test_a", "test_b"], count: 2 };
    // The agent hands its answer back either through a StructuredOutput tool or as the model's
    // JSON text (the API's native structured outputs); the fake model does whichever it is asked.
    scripts.set(marker, (body) => {
      const tools = ((body.tools ?? []) as { name: string }[]).map((t) => t.name);
      if (tools.includes("StructuredOutput") && !isToolResult(body))
        return { kind: "tool_use", name: "StructuredOutput", input: answer };
      return { kind: "text", text: JSON.stringify(answer) };
    });
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      agent: {
        outputFormat: {
          type: "json_schema",
          schema: {
            type: "object",
            properties: { failing: { type: "array", items: { type: "string" } }, count: { type: "integer" } },
            required: ["failing", "count"],
            additionalProperties: false,
          },
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["completed", "failed"]);
    expect(done.state, JSON.stringify(done)).toBe("completed");
    expect(done.structuredOutput).toEqual(answer);
    // A schema that is not an object is refused at the door.
    const bad = await call("POST", "/v1/sessions", {
      prompt: marker,
      agent: { outputFormat: { type: "json_schema", schema: "string" } },
    });
    expect(bad.status).toBe(400);
  }, 150_000);

  it("includePartialMessages: the answer's deltas arrive as stream_event messages", async () => {
    const marker = `partial-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: `partial answer ${marker}` }));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      agent: { includePartialMessages: true },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await until(created.body.id, ["completed", "failed"]);
    const r = await readSse(
      `${agent.server.url}/v1/sessions/${created.body.id}/events`,
      { headers: { authorization: `Bearer ${agent.server.adminKey}` } },
      { timeoutMs: 10_000 },
    );
    const deltas = r.events.filter((e) => e.event === "message" && e.data.type === "stream_event");
    expect(deltas.length).toBeGreaterThan(0);
    expect(JSON.stringify(deltas)).toContain("text_delta");
  }, 150_000);

  it("uploaded skills are refused at the door when malformed, leaving nothing behind", async () => {
    const before = (await call("GET", "/v1/sandboxes")).body.items.length;
    const manifest = (name: string) => `---\nname: ${name}\ndescription: does a thing\n---\nbody\n`;
    const skill = (name: string, files: { path: string; content: string }[]) => ({ name, files });
    const good = skill("ok-skill", [{ path: "SKILL.md", content: manifest("ok-skill") }]);
    const cases: [string, Record<string, unknown>, string][] = [
      [
        "a name outside [a-z0-9-]",
        { skills: [skill("Bad_Name", [{ path: "SKILL.md", content: manifest("Bad_Name") }])] },
        "skills.0.name",
      ],
      [
        "no SKILL.md",
        { skills: [skill("no-manifest", [{ path: "README.md", content: "x" }])] },
        "skills[0].files",
      ],
      [
        "SKILL.md without front matter",
        { skills: [skill("bare", [{ path: "SKILL.md", content: "just text" }])] },
        "skills[0].files",
      ],
      [
        "front matter without a description",
        { skills: [skill("nodesc", [{ path: "SKILL.md", content: "---\nname: nodesc\n---\n" }])] },
        "skills[0].files",
      ],
      [
        "a front matter name that is not the folder's",
        { skills: [skill("one", [{ path: "SKILL.md", content: manifest("other") }])] },
        "skills[0].name",
      ],
      [
        "a path out of the folder",
        {
          skills: [
            skill("trav", [
              { path: "SKILL.md", content: manifest("trav") },
              { path: "../../../.bashrc", content: "x" },
            ]),
          ],
        },
        "skills[0].files[1].path",
      ],
      [
        "an absolute path",
        {
          skills: [
            skill("abs", [
              { path: "SKILL.md", content: manifest("abs") },
              { path: "/etc/passwd", content: "x" },
            ]),
          ],
        },
        "skills[0].files[1].path",
      ],
      ["the same name twice", { skills: [good, good] }, "skills[1].name"],
      [
        "settingSources without project",
        { skills: [good], agent: { settingSources: ["user"] } },
        "agent.settingSources",
      ],
      [
        "agent.skills that leaves it out",
        { skills: [good], agent: { skills: ["something-else"] } },
        "agent.skills",
      ],
    ];
    for (const [what, body, field] of cases) {
      const r = await call("POST", "/v1/sessions", { prompt: "x", ...body });
      expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error.code, what).toBe("invalid_request");
      expect(r.body.error.details?.field, what).toBe(field);
    }
    // Past 8 MiB in all: 413, naming where.
    const big = await call("POST", "/v1/sessions", {
      prompt: "x",
      skills: [
        skill("big", [
          { path: "SKILL.md", content: manifest("big") },
          { path: "data.bin", content: "a".repeat((8 << 20) + 1) },
        ]),
      ],
    });
    expect(big.status, JSON.stringify(big.body).slice(0, 500)).toBe(413);
    expect(big.body.error.details.field).toBe("skills[0].files[1].content");
    expect((await call("GET", "/v1/sandboxes")).body.items.length).toBe(before);
  }, 60_000);

  it("agent.agents and agent.settingSources reach claude: the subagent is offered to the model, and a project CLAUDE.md is read only with the project source", async () => {
    const marker = `settings-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "ok" }));
    const memory = (tag: string) => ({ path: "CLAUDE.md", content: `Project memory ${marker}-${tag}\n` });
    // Default sources (the SDK reads all of them) and a subagent; then only the user's settings.
    const [withAgent, userOnly] = await Promise.all([
      call("POST", "/v1/sessions", {
        prompt: `${marker} one`,
        files: [memory("default")],
        agent: {
          agents: {
            "pdf-reviewer": { description: `Reviews PDFs ${marker}-subagent`, prompt: "You review PDFs." },
          },
        },
      }),
      call("POST", "/v1/sessions", {
        prompt: `${marker} two`,
        files: [memory("user-only")],
        agent: { settingSources: ["user"] },
      }),
    ]);
    expect(withAgent.status, JSON.stringify(withAgent.body)).toBe(201);
    expect(userOnly.status, JSON.stringify(userOnly.body)).toBe(201);
    await Promise.all([
      until(withAgent.body.id, ["completed", "failed"]),
      until(userOnly.body.id, ["completed", "failed"]),
    ]);
    const sent = (prompt: string) =>
      JSON.stringify(
        agent.model
          .turns()
          .filter((t) => t.body.stream && JSON.stringify(t.body.messages).includes(prompt))
          .map((t) => t.body),
      );
    const one = sent(`${marker} one`);
    const two = sent(`${marker} two`);
    expect(one).toContain(`${marker}-subagent`);
    expect(one).toContain(`${marker}-default`);
    expect(two).toContain(`${marker} two`);
    expect(two).not.toContain(`${marker}-user-only`);
    expect(two).not.toContain(`${marker}-subagent`);
  }, 150_000);
});
