/**
 * Warm starts of agent sessions (BERTH_AGENT_WARM_POOL): sandboxes made ahead of time with a
 * parked `claude` in each (the SDK's prewarm), taken by ephemeral sessions with default options.
 * The real SDK, the real `claude` in real runc sandboxes, and the FAKE model server as the only
 * stand-in.
 */
import { execFileSync } from "node:child_process";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  firstUserText,
  isToolResult,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

let model: FakeModel;
let server: TestServer;
/** Every first user message the fake model was asked about, in order. */
const prompts: string[] = [];

beforeAll(async () => {
  model = await startFakeModel((req) => {
    const text = firstUserText(req.body);
    prompts.push(text);
    const marker = /write-(\S+)/.exec(text)?.[1];
    if (marker && !isToolResult(req.body))
      return {
        kind: "tool_use",
        name: "Bash",
        input: { command: `echo ${marker} in $(pwd)`, description: "where" },
      };
    return { kind: "text", text: "done" };
  });
  server = await startTestServer({
    env: {
      BERTH_ANTHROPIC_API_KEY: "sk-ant-test",
      BERTH_ANTHROPIC_BASE_URL: model.url,
      BERTH_AGENT_WARM_POOL: "1",
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
});

const call = (method: string, path: string, body?: unknown, key = server.adminKey) =>
  api(server, key, method, path, body);

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${server.adminKey}` },
  });
  const families = parsePrometheusTextFormat(await res.text()) as any[];
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x: any) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m ? Number(m.value) : Number.NaN;
}

/** Waits until the pool has a parked start ready. */
async function poolReady(): Promise<void> {
  await waitFor(
    "a parked start in the warm pool",
    () => metric("berth_agent_warm_pool_ready"),
    (n) => n >= 1,
    {
      timeoutMs: 90_000,
    },
  );
}

/** Runs an ephemeral session to its end: its record, and whether its start was warm. */
async function runSession(body: Record<string, unknown>, key = server.adminKey) {
  const created = await call("POST", "/v1/sessions", { prompt: "say done", ...body }, key);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const session = await sessionIn((p) => call("GET", p, undefined, key), created.body.id, [
    "completed",
    "failed",
  ]);
  const log = await readSse(
    `${server.url}/v1/sessions/${created.body.id}/events`,
    { headers: { authorization: `Bearer ${key}` } },
    { timeoutMs: 2_000 },
  );
  const starting = log.events.find((e) => e.event === "state" && (e.data as any).state === "starting");
  return { session, warm: (starting?.data as any)?.warm as boolean, events: log.events };
}

/** Sandboxes runc runs for this server (pooled ones included). */
function runcIds(): string[] {
  const out = execFileSync("runc", ["--root", `${server.dataDir}/runtime/runc`, "list", "-q"], {
    encoding: "utf8",
  });
  return out.split("\n").filter(Boolean);
}

describe("warm starts of agent sessions", () => {
  it("an ephemeral session with default options takes a parked start: tools act in its sandbox, the pool refills", async () => {
    await poolReady();
    const parked = runcIds();
    expect(parked.length).toBe(1);
    const warmBefore = await metric("berth_agent_starts_total", { kind: "warm" });
    const { session, warm, events } = await runSession({
      prompt: "please write-w1 now",
      agent: { cwd: "/workspace/w1" },
      sandbox: { labels: { team: "warm" } },
    });
    expect(warm).toBe(true);
    expect(session.state, JSON.stringify(session)).toBe("completed");
    expect(session.result.subtype).toBe("success");
    expect(session.sandboxId).toBe(parked[0]);
    expect(await metric("berth_agent_starts_total", { kind: "warm" })).toBe(warmBefore + 1);
    // The SDK ran the tool in the claimed session's directory, not the parking one.
    const toolResult = events.find(
      (e) => e.event === "message" && JSON.stringify(e.data).includes("tool_result"),
    );
    expect(JSON.stringify(toolResult?.data)).toContain("w1 in /workspace/w1");
    expect(prompts.some((p) => p.includes("write-w1"))).toBe(true);
    // Ephemeral: its sandbox is gone; a new parked start takes its place.
    const sandbox = await call("GET", `/v1/sandboxes/${session.sandboxId}`);
    expect(sandbox.body.state).toBe("deleted");
    expect(sandbox.body.labels).toEqual({ team: "warm" });
    await poolReady();
    expect(runcIds()).not.toContain(session.sandboxId);
  }, 120_000);

  it("the claimed sandbox is the caller's alone, with the lifetime and labels asked for; parked ones are nobody's", async () => {
    const key = (await call("POST", "/v1/keys", { tenant: `warm-${Date.now()}` })).body.key as string;
    const other = (await call("POST", "/v1/keys", { tenant: `other-${Date.now()}` })).body.key as string;
    await poolReady();
    const parkedId = runcIds()[0];
    // A parked sandbox is in no tenant's list and answers 404 to everyone.
    expect((await call("GET", `/v1/sandboxes/${parkedId}`, undefined, key)).status).toBe(404);
    expect((await call("GET", `/v1/sandboxes/${parkedId}`)).status).toBe(404);
    expect((await call("GET", "/v1/sandboxes", undefined, key)).body.items).toEqual([]);
    const created = await call(
      "POST",
      "/v1/sessions",
      { prompt: "hello", pattern: "ephemeral", sandbox: { timeoutSeconds: 600, labels: { a: "b" } } },
      key,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sandbox = await call("GET", `/v1/sandboxes/${created.body.sandboxId}`, undefined, key);
    expect(sandbox.body.id).toBe(parkedId);
    expect(sandbox.body.timeoutSeconds).toBe(600);
    expect(sandbox.body.labels).toEqual({ a: "b" });
    expect(Date.parse(sandbox.body.expiresAt) - Date.parse(sandbox.body.createdAt)).toBe(600_000);
    expect(Date.now() - Date.parse(sandbox.body.createdAt)).toBeLessThan(60_000);
    expect((await call("GET", `/v1/sandboxes/${parkedId}`, undefined, other)).status).toBe(404);
    expect((await call("GET", `/v1/sessions/${created.body.id}`, undefined, other)).status).toBe(404);
    await call("DELETE", `/v1/sessions/${created.body.id}`, undefined, key);
  }, 120_000);

  it("a session asking for what a parked process cannot take starts cold, and a bad field is still a 400", async () => {
    await poolReady();
    const parked = runcIds();
    const cold = await runSession({ agent: { maxTurns: 3, env: { FOO: "bar" } } });
    expect(cold.warm).toBe(false);
    expect(cold.session.state).toBe("completed");
    expect(parked).not.toContain(cold.session.sandboxId);
    // The parked start is still there for the next session.
    expect(runcIds()).toEqual(parked);
    const bad = await call("POST", "/v1/sessions", { prompt: "x", sandbox: { timeoutSeconds: 10 ** 12 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
    await poolReady();
    expect(runcIds().length).toBe(1);
  }, 120_000);

  it("a hybrid session takes a parked start too: it hibernates, wakes on a message and resumes the conversation", async () => {
    await poolReady();
    const parked = runcIds();
    const created = await call("POST", "/v1/sessions", {
      prompt: "hybrid-warm first",
      pattern: "hybrid",
      agent: { idleSeconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.sandboxId).toBe(parked[0]);
    const id = created.body.id as string;
    // A session that ends instead (failed, completed) stops the wait, and the check shows it whole.
    const sessionAt = async (states: string[]) => {
      const s = await sessionIn((p) => call("GET", p), id, [...states, "failed", "completed"]);
      expect(states, JSON.stringify(s)).toContain(s.state);
      return s;
    };
    await sessionAt(["hibernated"]);
    expect((await call("POST", `/v1/sessions/${id}/messages`, { text: "hybrid-warm second" })).status).toBe(
      202,
    );
    // The model is asked again; meanwhile the session and its sandbox are shown if it never is.
    const t = await waitFor(
      "the model to be asked the second message",
      async () => ({
        turn: model.turns().find((r) => JSON.stringify(r.body).includes("hybrid-warm second")),
        session: (await call("GET", `/v1/sessions/${id}`)).body,
        sandbox: (await call("GET", `/v1/sandboxes/${created.body.sandboxId}`)).body,
      }),
      (v) => v.turn !== undefined,
      { timeoutMs: 90_000 },
    );
    // Resumed from the transcript the parked process wrote under the session's id.
    expect(JSON.stringify(t.turn?.body.messages)).toContain("hybrid-warm first");
    await sessionAt(["idle", "hibernated"]);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${created.body.sandboxId}`);
  }, 120_000);

  it("a restart replaces the parked start of the earlier run and leaves no sandbox behind", async () => {
    await poolReady();
    const before = runcIds();
    await server.restart();
    await poolReady();
    const after = runcIds();
    expect(after.length).toBe(1);
    expect(after).not.toEqual(before);
    const { warm, session } = await runSession({});
    expect(warm).toBe(true);
    expect(session.state).toBe("completed");
  }, 120_000);
});
