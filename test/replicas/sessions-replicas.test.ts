// Agent sessions on two `berth serve` replicas sharing one PostgreSQL: the agent of a session
// runs on the replica that holds its sandbox, and any replica takes its messages, interrupts,
// deletes and event streams (relayed there), and starts sessions in the other's sandboxes.
// The real SDK and `claude` in real sandboxes; the FAKE model server is the only stand-in.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModel, lastUserText, startFakeModel } from "../fixtures/fake-model/server.js";
import { startPostgres } from "../support/postgres.js";
import { api } from "../support/server.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sessionIn } from "../support/sessions.js";
import { readSse, type SseEvent } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

let pg: { url: string; stop(): Promise<void> };
let model: FakeModel;
let a: ServerProcess;
let b: ServerProcess;
const on = (s: ServerProcess, method: string, path: string, body?: unknown) =>
  api(s, s.adminKey, method, path, body);

beforeAll(async () => {
  execFileSync("npx", ["tsc", "-b", "packages/cli"], { cwd: `${import.meta.dirname}/../..` });
  model = await startFakeModel((req) => {
    const text = lastUserText(req.body);
    if (text.includes("slowly")) return { kind: "slow", text: "taking my time", chunks: 200, delayMs: 50 };
    if (text.includes("steadily")) return { kind: "slow", text: "step by step", chunks: 30, delayMs: 50 };
    return { kind: "text", text: `answer to: ${text}` };
  });
  pg = await startPostgres();
  const env = {
    BERTH_DATABASE_URL: pg.url,
    BERTH_ANTHROPIC_API_KEY: "sk-ant-replicas",
    BERTH_ANTHROPIC_BASE_URL: model.url,
  };
  a = await startServerProcess(env);
  b = await startServerProcess(env);
}, 180_000);

afterAll(async () => {
  for (const s of [a, b]) await s?.purge();
  await pg?.stop();
  await model?.close();
});

/** Waits for the session to be in `want` (or to have failed) and says which, with its record. */
async function reach(s: ServerProcess, id: string, want: string): Promise<any> {
  const r = await until(s, id, [want, "failed"]);
  expect(r.state, JSON.stringify(r)).toBe(want);
  return r;
}

const until = (s: ServerProcess, id: string, states: string[]) =>
  sessionIn((p) => on(s, "GET", p), id, states);

/** Sends the next message through `s` and waits until the model is asked it (the turn is under way). */
async function sendAndAsked(s: ServerProcess, id: string, text: string): Promise<void> {
  const before = model.turns().length;
  const sent = await on(s, "POST", `/v1/sessions/${id}/messages`, { text });
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  await waitFor(
    `the model to be asked "${text}"`,
    async () => ({
      asked: model
        .turns()
        .slice(before)
        .some((t) => lastUserText(t.body).includes(text)),
      session: (await on(s, "GET", `/v1/sessions/${id}`)).body,
    }),
    (v) => v.asked,
    { timeoutMs: 60_000 },
  );
}

describe("agent sessions on replicas sharing PostgreSQL", () => {
  it("takes a session's next message, events, interrupt and delete on the replica that does not run it", async () => {
    const created = await on(a, "POST", "/v1/sessions", { prompt: "first turn", pattern: "long-running" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    await reach(b, id, "idle");
    // The next turn through B reaches the agent on A, which sends the model both turns.
    await sendAndAsked(b, id, "second turn");
    const done = await until(b, id, ["idle", "failed"]);
    expect(done.state).toBe("idle");
    const last = model.turns().at(-1)?.body;
    expect(JSON.stringify(last.messages)).toContain("first turn");
    expect(lastUserText(last)).toContain("second turn");
    // A turn under way: its events read on A, then followed on B from the Last-Event-ID A gave.
    expect((await on(b, "POST", `/v1/sessions/${id}/messages`, { text: "answer steadily" })).status).toBe(
      202,
    );
    const running = (e: SseEvent) => e.event === "state" && e.data.state === "running";
    const isResult = (e: SseEvent) => e.event === "message" && e.data.type === "result";
    const onA = await readSse(
      `${a.url}/v1/sessions/${id}/events`,
      { headers: { authorization: `Bearer ${a.adminKey}` } },
      { until: (_e, all) => all.filter(running).length === 3, timeoutMs: 10_000 },
    );
    expect(onA.events.filter(running)).toHaveLength(3);
    expect(onA.events.filter(isResult)).toHaveLength(2);
    // B follows the store: the turn's result is written by A after this stream opens.
    expect((await on(b, "GET", `/v1/sessions/${id}`)).body.state).toBe("running");
    const onB = await readSse(
      `${b.url}/v1/sessions/${id}/events`,
      { headers: { authorization: `Bearer ${b.adminKey}`, "last-event-id": String(onA.events.at(-1)?.id) } },
      { until: isResult, timeoutMs: 15_000 },
    );
    expect(onB.status).toBe(200);
    expect(onB.events.filter(isResult)).toHaveLength(1);
    expect(onB.events.at(-1)?.data.result).toContain("step by step");
    // Together they are the stored log up to that result, each event once, in order.
    const all = await readSse(
      `${b.url}/v1/sessions/${id}/events`,
      { headers: { authorization: `Bearer ${b.adminKey}` } },
      { until: (_e, got) => got.filter(isResult).length === 3, timeoutMs: 10_000 },
    );
    const ids = [...onA.events, ...onB.events].map((e) => e.id);
    expect(ids).toEqual(all.events.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);
    // A slow turn interrupted through B: the agent on A stops it and waits for the next message.
    await sendAndAsked(b, id, "answer slowly");
    const interrupted = await on(b, "POST", `/v1/sessions/${id}/interrupt`);
    expect(interrupted.status, JSON.stringify(interrupted.body)).toBe(202);
    await reach(a, id, "idle");
    // Deleted through B: the agent process on A ends with it.
    expect((await on(b, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
    expect((await on(a, "GET", `/v1/sessions/${id}`)).body.state).toBe("completed");
    const agents: string = await waitFor(
      "the agent process to end",
      async () =>
        (
          await on(b, "POST", `/v1/sandboxes/${done.sandboxId}/exec`, {
            cmd: ["sh", "-c", "pgrep -f '[/]claude' || true"],
          })
        ).body.stdout,
      (out: string) => out.trim() === "",
    );
    expect(agents.trim()).toBe("");
  }, 180_000);

  it("starts sessions through B in a sandbox A holds or from A's snapshot, and they run on A", async () => {
    const sb = await on(a, "POST", "/v1/sandboxes", {});
    expect(sb.status).toBe(201);
    const created = await on(b, "POST", "/v1/sessions", {
      prompt: "hello from b",
      pattern: "shared",
      sandbox: { id: sb.body.id },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.sandboxId).toBe(sb.body.id);
    const done = await until(a, created.body.id, ["idle", "failed"]);
    expect(done.state, JSON.stringify(done)).toBe("idle");
    // Its working directory is in A's sandbox.
    const ls = await on(a, "POST", `/v1/sandboxes/${sb.body.id}/exec`, { cmd: ["ls", "/home/user/work"] });
    expect(ls.body.stdout).toContain(created.body.id);
    // Another tenant naming that sandbox gets the same 404 as for any sandbox not theirs.
    const key = (await on(a, "POST", "/v1/keys", { tenant: `t-${Date.now()}` })).body.key as string;
    const foreign = await api(b, key, "POST", "/v1/sessions", {
      prompt: "x",
      pattern: "shared",
      sandbox: { id: sb.body.id },
    });
    expect(foreign.status).toBe(404);
    await on(b, "DELETE", `/v1/sessions/${created.body.id}`);
    // A session whose new sandbox is made from A's snapshot, asked of B, is made by A.
    await on(a, "POST", `/v1/sandboxes/${sb.body.id}/exec`, {
      cmd: ["sh", "-c", "echo kept > /workspace/k"],
    });
    const snap = await on(a, "POST", `/v1/sandboxes/${sb.body.id}/snapshots`, {});
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    const fromSnap = await on(b, "POST", "/v1/sessions", {
      prompt: "from the snapshot",
      pattern: "long-running",
      sandbox: { fromSnapshot: snap.body.id },
    });
    expect(fromSnap.status, JSON.stringify(fromSnap.body)).toBe(201);
    await reach(b, fromSnap.body.id, "idle");
    const kept = await on(b, "POST", `/v1/sandboxes/${fromSnap.body.sandboxId}/exec`, {
      cmd: ["cat", "/workspace/k"],
    });
    expect(kept.body.stdout).toBe("kept\n");
    expect((await on(b, "DELETE", `/v1/sessions/${fromSnap.body.id}`)).status).toBe(204);
    for (const id of [sb.body.id, fromSnap.body.sandboxId])
      expect((await on(b, "DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect((await on(b, "DELETE", `/v1/snapshots/${snap.body.id}`)).status).toBe(204);
  }, 180_000);

  it("answers 503 replica_unavailable for a session whose replica is killed mid-turn, serves its record and events from the store meanwhile, and a stream held open goes on after the restart", async () => {
    const created = await on(a, "POST", "/v1/sessions", {
      prompt: "before the kill",
      pattern: "long-running",
    });
    const id = created.body.id as string;
    const sandboxId = created.body.sandboxId as string;
    await reach(b, id, "idle");
    const isResult = (e: SseEvent) => e.event === "message" && e.data.type === "result";
    const auth = { authorization: `Bearer ${b.adminKey}` };
    // An ephemeral session that ended on A: no agent left, so B answers for it even while A is down.
    const ended = await on(a, "POST", "/v1/sessions", { prompt: "one and done" });
    await reach(b, ended.body.id, "completed");
    // A is killed mid-turn.
    await sendAndAsked(b, id, "answer slowly");
    await a.kill("SIGKILL");
    let following: Promise<{ status: number; events: SseEvent[] }> | undefined;
    try {
      const sent = await on(b, "POST", `/v1/sessions/${id}/messages`, { text: "anyone?" });
      expect(sent.status).toBe(503);
      expect(sent.body.error.code).toBe("replica_unavailable");
      expect((await on(b, "POST", `/v1/sessions/${id}/interrupt`)).status).toBe(503);
      const beside = await on(b, "POST", "/v1/sessions", {
        prompt: "x",
        pattern: "shared",
        sandbox: { id: sandboxId },
      });
      expect(beside.status, JSON.stringify(beside.body)).toBe(503);
      expect(beside.body.error.code).toBe("replica_unavailable");
      expect((await on(b, "GET", `/v1/sessions/${id}`)).body.id).toBe(id);
      expect((await on(b, "POST", `/v1/sessions/${ended.body.id}/messages`, { text: "more?" })).status).toBe(
        409,
      );
      expect((await on(b, "DELETE", `/v1/sessions/${ended.body.id}`)).status).toBe(204);
      // The event log replays on B while A is down.
      const replay = await readSse(
        `${b.url}/v1/sessions/${id}/events`,
        { headers: auth },
        { timeoutMs: 1500 },
      );
      expect(replay.status).toBe(200);
      expect(replay.events.filter(isResult)).toHaveLength(1);
      // A stream opened now, from its last event, stays open across A's restart.
      following = readSse(
        `${b.url}/v1/sessions/${id}/events`,
        { headers: { ...auth, "last-event-id": String(replay.events.at(-1)?.id) } },
        { until: isResult, timeoutMs: 60_000 },
      );
    } finally {
      await a.start();
    }
    // Back up: the session waits for a message, and takes it.
    expect((await until(b, id, ["idle"])).state).toBe("idle");
    await sendAndAsked(b, id, "after the restart");
    await reach(b, id, "idle");
    expect(lastUserText(model.turns().at(-1)?.body)).toContain("after the restart");
    // The stream held open on B saw A's recovery put the cut turn's session back to idle, then the next turn.
    const after = await following;
    expect(after?.events.find((e) => e.event === "state")?.data).toMatchObject({
      state: "idle",
      from: "running",
    });
    expect(after?.events.filter(isResult)).toHaveLength(1);
    expect(after?.events.at(-1)?.data.result).toContain("after the restart");
    await on(b, "DELETE", `/v1/sessions/${id}`);
  }, 180_000);

  it("wakes a hybrid session hibernated on A when its next message comes through B, with its earlier turns", async () => {
    const marker = `hybrid-${Date.now()}`;
    const created = await on(a, "POST", "/v1/sessions", {
      prompt: `remember ${marker}`,
      pattern: "hybrid",
      agent: { idleSeconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    await reach(b, id, "hibernated");
    expect((await on(b, "GET", `/v1/sandboxes/${created.body.sandboxId}`)).body.state).toBe("hibernated");
    const sent = await on(b, "POST", `/v1/sessions/${id}/messages`, { text: "wake up" });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    await reach(b, id, "idle");
    const last = model.turns().at(-1)?.body;
    expect(lastUserText(last)).toContain("wake up");
    expect(JSON.stringify(last.messages)).toContain(marker);
    expect((await on(a, "GET", `/v1/sandboxes/${created.body.sandboxId}`)).body.state).toBe("running");
    expect((await on(b, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
  }, 180_000);
});
