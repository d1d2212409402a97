/**
 * What sessions cost and why they fail, end to end: the real Claude Agent SDK in the server, the
 * real `claude` binary in real runc sandboxes, the model gateway, and a FAKE model server
 * (test/fixtures/fake-model) as the only stand-in, answering with scripted turns and errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  type FakeTurn,
  MarkerScripts,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";

const REAL_KEY = `sk-ant-real-${Math.random().toString(36).slice(2)}`;
const FINAL = ["completed", "failed", "cancelled"];

let model: FakeModel;
let server: TestServer;
/** Scripts by prompt marker, so tests can share one fake model. */
const scripts = new MarkerScripts();

beforeAll(async () => {
  model = await startFakeModel(scripts.route);
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: REAL_KEY, BERTH_ANTHROPIC_BASE_URL: model.url },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
});

const call = (method: string, path: string, body?: unknown, key = server.adminKey) =>
  api(server, key, method, path, body);
const until = (id: string, states: string[], key = server.adminKey) =>
  sessionIn((p) => call("GET", p, undefined, key), id, states);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const loop = (): FakeTurn => ({
  kind: "tool_use",
  name: "Bash",
  input: { command: "true", description: "again" },
});
const slow = (): FakeTurn => ({ kind: "slow", text: "z".repeat(600), chunks: 600, delayMs: 100 });

/** Lets wall-clock time pass (what is measured here is billing over time, not a wait for a state). */
async function letTimePass(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}

/** Waits until the fake model has been sent a turn of `marker` (the agent is mid-turn). */
async function modelCalled(marker: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!model.turns().some((t) => JSON.stringify(t.body).includes(marker))) {
    if (Date.now() > deadline) throw new Error(`the fake model was never asked about ${marker}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs the built `berth` CLI against the test server. */
const berth = (args: string[]) => runBerth(server, args);

describe("compute billed for what ran", () => {
  it("hibernated time is not billed: a session's compute stands still while its sandbox hibernates", async () => {
    const marker = `hibernate-bill-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "noted" }));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "hybrid",
      agent: { idleSeconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const asleep = await until(id, ["hibernated"]);
    const before = asleep.cost.computeUsd;
    expect(before).toBeGreaterThan(0);
    await letTimePass(3_000);
    const still = await call("GET", `/v1/sessions/${id}`);
    expect(still.body.state).toBe("hibernated");
    // Exactly the same: no running stretch is open while it hibernates.
    expect(still.body.cost.computeUsd).toBe(before);
    const row = (await call("GET", "/v1/usage?groupBy=session")).body.items.find((r: any) => r.key === id);
    const lifeSeconds = (Date.now() - Date.parse(created.body.createdAt)) / 1000;
    expect(row.sandboxSeconds).toBeLessThan(lifeSeconds - 2.5);
    // Woken by the next message, it runs (and is billed) again.
    expect((await call("POST", `/v1/sessions/${id}/messages`, { text: "again" })).status).toBe(202);
    const metrics = await call("GET", `/v1/sandboxes/${created.body.sandboxId}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body.runningSeconds).toBeLessThan(metrics.body.uptimeSeconds - 2.5);
    await until(id, ["idle", "hibernated"]);
    const after = (await call("GET", `/v1/sessions/${id}`)).body.cost.computeUsd;
    expect(after).toBeGreaterThan(before);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${created.body.sandboxId}`);
  }, 120_000);

  it("a shared sandbox's compute is split between its sessions: the parts add up to the sandbox's running time", async () => {
    const marker = `split-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "shared answer" }));
    const sb = await call("POST", "/v1/sandboxes", {});
    expect(sb.status).toBe(201);
    const made = await Promise.all(
      [1, 2].map((n) =>
        call("POST", "/v1/sessions", {
          prompt: `${marker} ${n}`,
          pattern: "shared",
          sandbox: { id: sb.body.id },
        }),
      ),
    );
    for (const m of made) expect(m.status, JSON.stringify(m.body)).toBe(201);
    const ids = made.map((m) => m.body.id as string);
    await Promise.all(ids.map((id) => until(id, ["idle"])));
    await letTimePass(1_000);
    for (const id of ids) expect((await call("DELETE", `/v1/sessions/${id}`)).status).toBe(204);
    expect((await call("DELETE", `/v1/sandboxes/${sb.body.id}`)).status).toBe(204);
    const sessions = await Promise.all(ids.map(async (id) => (await call("GET", `/v1/sessions/${id}`)).body));
    const rows = (await call("GET", "/v1/usage?groupBy=session")).body.items;
    const shares = ids.map((id) => rows.find((r: any) => r.key === id));
    // The sandbox's own row: its running time before the first session and after the last.
    const own = rows.find((r: any) => r.key === sb.body.id);
    const billed = sum(shares.map((r: any) => r.sandboxSeconds)) + (own?.sandboxSeconds ?? 0);
    const bySandbox = (await call("GET", "/v1/usage?groupBy=sandbox")).body.items.find(
      (r: any) => r.key === sb.body.id,
    );
    expect(bySandbox.sandboxSeconds).toBeCloseTo(billed, 6);
    expect(bySandbox.computeUsd).toBeCloseTo(
      sum(shares.map((r: any) => r.computeUsd)) + (own?.computeUsd ?? 0),
      9,
    );
    // ... and that is the sandbox's running life (its `running` to its `deleted` event), not a
    // multiple of it (the store's writes of a stretch and of its events are a few ms apart).
    const states = (await call("GET", `/v1/sandboxes/${sb.body.id}`)).body;
    expect(states.state).toBe("deleted");
    const events = await fetch(`${server.url}/v1/sandboxes/${sb.body.id}/events`, {
      headers: { authorization: `Bearer ${server.adminKey}`, accept: "text/event-stream" },
    }).then((r) => r.text());
    const deletedAt = [...events.matchAll(/"state":"deleted"[^\n]*"at":"([^"]+)"/g)].at(-1)?.[1];
    expect(deletedAt, events).toBeDefined();
    const runningAt = /"state":"running"[^\n]*"at":"([^"]+)"/.exec(events)?.[1];
    expect(runningAt, events).toBeDefined();
    const life = (Date.parse(deletedAt as string) - Date.parse(runningAt as string)) / 1000;
    expect(billed).toBeLessThanOrEqual(life + 0.5);
    expect(billed).toBeGreaterThan(life - 0.5);
    // While both were live each paid half: each share is less than its session's own life.
    for (const [i, s] of sessions.entries()) {
      const sessionLife = (Date.parse(s.endedAt) - Date.parse(s.createdAt)) / 1000;
      expect(shares[i].sandboxSeconds).toBeLessThan(sessionLife);
      expect(s.cost.computeUsd).toBeCloseTo(shares[i].computeUsd, 9);
    }
  }, 120_000);

  it("an admin key sees usage of every tenant; a tenant key only its own", async () => {
    const other = await call("POST", "/v1/keys", { tenant: `money-other-${Date.now()}` });
    expect(other.status).toBe(201);
    const marker = `tenant-usage-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "counted" }));
    const theirs = await call("POST", "/v1/sessions", { prompt: marker }, other.body.key);
    expect(theirs.status, JSON.stringify(theirs.body)).toBe(201);
    const mine = await call("POST", "/v1/sessions", { prompt: `${marker} admin` });
    expect(mine.status, JSON.stringify(mine.body)).toBe(201);
    await until(theirs.body.id, ["completed"], other.body.key);
    await until(mine.body.id, ["completed"]);
    const all = await call("GET", "/v1/usage?groupBy=tenant");
    const tenants = all.body.items.map((r: any) => r.key);
    expect(tenants).toContain(other.body.tenant);
    expect(tenants.length).toBeGreaterThanOrEqual(2);
    const own = await call("GET", "/v1/usage?groupBy=tenant", undefined, other.body.key);
    expect(own.body.items.map((r: any) => r.key)).toEqual([other.body.tenant]);
    expect(own.body.items[0].tokensUsd).toBeGreaterThan(0);
    const ownSessions = await call("GET", "/v1/usage?groupBy=session", undefined, other.body.key);
    expect(ownSessions.body.items.map((r: any) => r.key)).toEqual([theirs.body.id]);
    // The other groupings keep working for both.
    for (const g of ["session", "sandbox", "day"]) {
      const r = await call("GET", `/v1/usage?groupBy=${g}`);
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe("failures say why", () => {
  it("budget_exceeded: the gateway refuses past maxBudgetUsd and the session says so", async () => {
    const marker = `budget-${Date.now()}`;
    scripts.set(marker, loop);
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      agent: { maxTurns: 40, maxBudgetUsd: 0.005 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, FINAL);
    expect(done.state).toBe("failed");
    expect(done.failure.code, JSON.stringify(done.failure)).toBe("budget_exceeded");
    expect(done.failureReason).toBe(done.failure.message);
  }, 120_000);

  it("max_turns: an endless tool loop ends at maxTurns", async () => {
    const marker = `turns-${Date.now()}`;
    scripts.set(marker, loop);
    const created = await call("POST", "/v1/sessions", { prompt: marker, agent: { maxTurns: 2 } });
    const done = await until(created.body.id, FINAL);
    expect(done.state).toBe("failed");
    expect(done.failure).toMatchObject({ code: "max_turns" });
  }, 120_000);

  it("max_duration: the wall-clock limit ends a slow turn", async () => {
    const marker = `duration-${Date.now()}`;
    scripts.set(marker, slow);
    const created = await call("POST", "/v1/sessions", { prompt: marker, agent: { maxDurationSeconds: 2 } });
    const done = await until(created.body.id, FINAL);
    expect(done.state).toBe("failed");
    expect(done.failure).toMatchObject({ code: "max_duration" });
    expect(done.failure.message).toContain("maxDurationSeconds");
  }, 120_000);

  it("model_error with the upstream status: a 400 and a 529 from the model API", async () => {
    for (const [status, type] of [
      [400, "invalid_request_error"],
      [529, "overloaded_error"],
    ] as const) {
      const marker = `upstream-${status}-${Date.now()}`;
      scripts.set(marker, () => ({ kind: "error", status, type, message: `fake ${type}` }));
      const created = await call("POST", "/v1/sessions", {
        prompt: marker,
        // One retry of a 529, not ten (the `claude` binary's setting).
        agent: { env: { CLAUDE_CODE_MAX_RETRIES: "1" } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const done = await until(created.body.id, FINAL);
      expect(done.state).toBe("failed");
      expect(done.failure, JSON.stringify(done)).toMatchObject({
        code: "model_error",
        upstreamStatus: status,
      });
      expect(done.failure.message).toContain(`fake ${type}`);
    }
  }, 180_000);

  it("model_unavailable: with no model key a session is refused at once, naming the setting, and nothing is left", async () => {
    const keyless = await startTestServer({ env: { BERTH_ANTHROPIC_BASE_URL: model.url } });
    try {
      const r = await api(keyless, keyless.adminKey, "POST", "/v1/sessions", { prompt: "hello" });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe("model_unavailable");
      expect(r.body.error.message).toContain("BERTH_ANTHROPIC_API_KEY");
      expect((await api(keyless, keyless.adminKey, "GET", "/v1/sessions")).body.items).toEqual([]);
      expect((await api(keyless, keyless.adminKey, "GET", "/v1/sandboxes")).body.items).toEqual([]);
    } finally {
      await keyless.stop();
    }
  }, 120_000);

  it("interrupted: an interrupt ends an ephemeral session's turn; a delete cancels a working one", async () => {
    const marker = `interrupt-${Date.now()}`;
    scripts.set(marker, slow);
    const a = await call("POST", "/v1/sessions", { prompt: `${marker} a` });
    await modelCalled(`${marker} a`);
    expect((await call("POST", `/v1/sessions/${a.body.id}/interrupt`)).status).toBe(202);
    const stopped = await until(a.body.id, FINAL);
    expect(stopped.state).toBe("failed");
    expect(stopped.failure).toMatchObject({ code: "interrupted" });
    const b = await call("POST", "/v1/sessions", { prompt: `${marker} b`, pattern: "long-running" });
    await modelCalled(`${marker} b`);
    expect((await call("DELETE", `/v1/sessions/${b.body.id}`)).status).toBe(204);
    const cancelled = (await call("GET", `/v1/sessions/${b.body.id}`)).body;
    expect(cancelled.state).toBe("cancelled");
    expect(cancelled.failure).toMatchObject({ code: "interrupted" });
    await call("DELETE", `/v1/sandboxes/${b.body.sandboxId}`);
  }, 120_000);

  it("sandbox_lost: deleting the sandbox under a working session is refused unless forced, and forced ends it", async () => {
    const marker = `lost-${Date.now()}`;
    scripts.set(marker, slow);
    const s = await call("POST", "/v1/sessions", { prompt: marker, pattern: "long-running" });
    await modelCalled(marker);
    const refused = await call("DELETE", `/v1/sandboxes/${s.body.sandboxId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "in_use", details: { sessions: [s.body.id] } });
    expect((await call("DELETE", `/v1/sandboxes/${s.body.sandboxId}?force=true`)).status).toBe(204);
    const done = await until(s.body.id, FINAL);
    expect(done.state).toBe("failed");
    expect(done.failure).toMatchObject({ code: "sandbox_lost" });
  }, 120_000);

  // oom (the agent itself killed) is tested in sessions-oom.test.ts, beside a tool's OOM that
  // leaves the agent alive.

  it("server_restart: an ephemeral session cut by a restart fails with server_restart", async () => {
    const marker = `restart-${Date.now()}`;
    scripts.set(marker, slow);
    const s = await call("POST", "/v1/sessions", { prompt: marker });
    await modelCalled(marker);
    await server.restart();
    const done = await until(s.body.id, FINAL);
    expect(done.state).toBe("failed");
    expect(done.failure).toMatchObject({ code: "server_restart" });
  }, 120_000);

  it("the CLI prints the failure and Berth's cost, shows upstream retries, and `agent show` prints the failure", async () => {
    const failing = `cli-fail-${Date.now()}`;
    scripts.set(failing, () => ({
      kind: "error",
      status: 400,
      type: "invalid_request_error",
      message: "fake bad",
    }));
    const run = await berth(["agent", "run", failing]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain("failed: model_error (400)");
    expect(run.stdout).toMatch(/cost USD \d+\.\d{4} \(tokens \d+\.\d{4} \+ compute \d+\.\d{4}/);
    const id = /^session (ses_\S+)/.exec(run.stderr)?.[1];
    expect(id, run.stderr).toBeDefined();
    const show = await berth(["agent", "show", id as string]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("failed: model_error (400)");
    expect(show.stdout).toContain("fake bad");

    // A 529 once, then an answer: the retry is shown and the run succeeds without a failure.
    const retried = `cli-retry-${Date.now()}`;
    scripts.set(retried, (_body, n) =>
      n === 0
        ? { kind: "error", status: 529, type: "overloaded_error", message: "fake overloaded" }
        : { kind: "text", text: "answer after a retry" },
    );
    const ok = await berth(["agent", "run", retried]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/~ the model API answered 529; retry 1\/\d+/);
    expect(ok.stdout).toContain("answer after a retry");
    expect(ok.stdout).not.toContain("failed:");
    // Berth's figure, not the SDK's total_cost_usd.
    const sid = /^session (ses_\S+)/.exec(ok.stderr)?.[1] as string;
    const s = (await call("GET", `/v1/sessions/${sid}`)).body;
    expect(ok.stdout).toContain(`cost USD ${s.cost.totalUsd.toFixed(4)}`);
  }, 180_000);
});
