/**
 * Agent sessions end to end: the real Claude Agent SDK in the server, the real `claude` binary
 * inside real runc sandboxes, the model gateway, and a FAKE model server (test/fixtures/fake-model)
 * as the only stand-in, answering with scripted turns.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  type FakeTurn,
  isToolResult,
  lastUserText,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { readSse, type SseEvent } from "../support/sse.js";

const REAL_KEY = `sk-ant-real-${Math.random().toString(36).slice(2)}-do-not-leak`;

let model: FakeModel;
let server: TestServer;
/** Scripts by prompt marker, so tests can share one fake model. */
const scripts = new Map<string, (body: any) => FakeTurn>();

beforeAll(async () => {
  // The fake model listens on every address: the gateway (on the host) forwards to it.
  model = await startFakeModel((req) => {
    const first = req.body?.messages?.find((m: any) => m.role === "user");
    const firstText =
      typeof first?.content === "string"
        ? first.content
        : (first?.content ?? []).map((b: any) => b.text ?? "").join("");
    for (const [marker, script] of scripts) if (firstText.includes(marker)) return script(req.body);
    return { kind: "text", text: "ok" };
  });
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: REAL_KEY, BERTH_ANTHROPIC_BASE_URL: model.url },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
});

const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);

/** Waits until the session is in one of `states` (the test's own timeout bounds it). */
async function until(id: string, states: string[]): Promise<any> {
  for (;;) {
    const r = await call("GET", `/v1/sessions/${id}`);
    if (states.includes(r.body.state)) return r.body;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function events(id: string, lastEventId?: string): Promise<SseEvent[]> {
  const r = await readSse(
    `${server.url}/v1/sessions/${id}/events`,
    {
      headers: {
        authorization: `Bearer ${server.adminKey}`,
        ...(lastEventId ? { "last-event-id": lastEventId } : {}),
      },
    },
    { timeoutMs: 3_000 },
  );
  return r.events;
}

describe("agent sessions", () => {
  it("a Bash tool call writes a file inside the session's sandbox, not on the host", async () => {
    const marker = `bash-file-${Date.now()}`;
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "written" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: `echo made-by-agent > /home/user/${marker}.txt`, description: "write" },
          },
    );
    const created = await call("POST", "/v1/sessions", {
      prompt: `please ${marker}`,
      pattern: "long-running",
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["idle", "failed", "completed"]);
    expect(done.state, JSON.stringify(done)).toBe("idle");
    expect(done.result.subtype).toBe("success");
    const cat = await call("POST", `/v1/sandboxes/${done.sandboxId}/exec`, {
      cmd: ["cat", `/home/user/${marker}.txt`],
    });
    expect(cat.body.stdout).toBe("made-by-agent\n");
    expect(existsSync(`/home/user/${marker}.txt`)).toBe(false);
    // The gateway metered the two model calls.
    expect(done.usage.inputTokens).toBeGreaterThan(0);
    expect(done.cost.tokensUsd).toBeGreaterThan(0);
    const evs = await events(created.body.id);
    const messages = evs.filter((e) => e.event === "message").map((e) => e.data.type);
    expect(messages).toContain("assistant");
    expect(messages.at(-1)).toBe("result");
    await call("DELETE", `/v1/sessions/${created.body.id}`);
  }, 120_000);

  it("an endless tool loop stops at maxTurns with error_max_turns (ephemeral: the sandbox goes, the result stays)", async () => {
    const marker = `loop-${Date.now()}`;
    scripts.set(marker, () => ({
      kind: "tool_use",
      name: "Bash",
      input: { command: "true", description: "again" },
    }));
    const created = await call("POST", "/v1/sessions", { prompt: marker, agent: { maxTurns: 3 } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["completed", "failed"]);
    expect(done.result.subtype).toBe("error_max_turns");
    expect(done.turns).toBeGreaterThanOrEqual(3);
    const sb = await call("GET", `/v1/sandboxes/${done.sandboxId}`);
    expect(sb.body.state).toBe("deleted");
  }, 120_000);

  it("the real API key never reaches the sandbox: env, files and process list show only a session token", async () => {
    const marker = `leak-${Date.now()}`;
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "looked" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: {
              command: `(env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '; grep -rs . /home/user 2>/dev/null) > /tmp/${marker}.txt; echo done`,
              description: "look",
            },
          },
    );
    const created = await call("POST", "/v1/sessions", { prompt: marker, pattern: "long-running" });
    const done = await until(created.body.id, ["idle", "failed", "completed"]);
    expect(done.state).toBe("idle");
    const seen = await call("POST", `/v1/sandboxes/${done.sandboxId}/exec`, {
      cmd: ["cat", `/tmp/${marker}.txt`],
    });
    expect(seen.body.stdout).toContain("ANTHROPIC_API_KEY=berth-gw-");
    expect(seen.body.stdout).not.toContain(REAL_KEY);
    // The model did get the real key, from the gateway.
    const turns = model.turns().filter((t) => JSON.stringify(t.body).includes(marker));
    expect(turns.length).toBeGreaterThan(0);
    for (const t of turns) expect(t.headers["x-api-key"]).toBe(REAL_KEY);
    await call("DELETE", `/v1/sessions/${created.body.id}`);
  }, 120_000);

  it("rejects bad session requests with stable codes", async () => {
    const tooMany = await call("POST", "/v1/sessions", { prompt: "x", agent: { maxTurns: 100_000 } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.code).toBe("invalid_request");
    const shared = await call("POST", "/v1/sessions", { prompt: "x", pattern: "shared" });
    expect(shared.status).toBe(400);
    expect(shared.body.error.details.field).toBe("sandbox.id");
    const missing = await call("GET", "/v1/sessions/ses_nope");
    expect(missing.status).toBe(404);
  });
});
