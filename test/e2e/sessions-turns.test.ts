/**
 * A session's turns and its sandbox's sleep, end to end: the real Claude Agent SDK in the server,
 * the real `claude` binary in real runc sandboxes, and a FAKE model server (test/fixtures/fake-model)
 * as the only stand-in. Messages that come while a turn runs are each answered, in order, with
 * the session `running` all along; a hybrid session comes back from its sandbox being hibernated
 * by anyone, and never hibernates a sandbox another live session uses.
 */
import { BerthClient, type SessionEvent, Sessions } from "@berth/sdk";
import { describe, expect, it } from "vitest";
import { lastUserText } from "../fixtures/fake-model/server.js";
import { useAgentServer } from "../support/agent-server.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

const agent = useAgentServer("turns");
const { scripts, call } = agent;
const until = (id: string, states: string[]) => agent.until(id, states);
const sandboxIn = (id: string, states: string[]) =>
  waitFor(
    `sandbox ${id} to reach ${states.join("/")}`,
    async () => (await call("GET", `/v1/sandboxes/${id}`)).body,
    (s) => states.includes(s?.state),
    { timeoutMs: 60_000, everyMs: 100 },
  );
/** The model request whose last user message holds `text`, once it comes. */
const askedAbout = (text: string) =>
  waitFor(
    `the model to be asked "${text}"`,
    () => agent.model.turns().find((r) => lastUserText(r.body).includes(text)),
    (t) => t !== undefined,
    { timeoutMs: 90_000 },
  ).then((t) => t as NonNullable<typeof t>);

/** Every event of a session so far (the stream is read until it has been quiet a moment). */
async function eventsOf(id: string) {
  const r = await readSse(
    `${agent.server.url}/v1/sessions/${id}/events`,
    { headers: { authorization: `Bearer ${agent.server.adminKey}` } },
    { timeoutMs: 3_000 },
  );
  return r.events;
}

describe("session turns", () => {
  it("three messages sent during a turn are each answered, in order, and the session stays running until the last", async () => {
    const marker = `queue-${Date.now()}`;
    // The first answer streams for a few seconds, so the three messages arrive while it runs.
    const qs = [1, 2, 3].map((n) => `question-${n}-${marker}`);
    const asks = (body: unknown) => qs.find((q) => lastUserText(body).includes(q));
    scripts.set(marker, (body) => {
      const q = asks(body);
      return q
        ? { kind: "text", text: `answer to ${q}` }
        : { kind: "slow", text: "w".repeat(40), chunks: 40, delayMs: 100 };
    });
    const created = await call("POST", "/v1/sessions", {
      prompt: `${marker} first`,
      pattern: "long-running",
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    await askedAbout(`${marker} first`);
    for (const q of qs) {
      const sent = await call("POST", `/v1/sessions/${id}/messages`, { text: q });
      expect(sent.status, JSON.stringify(sent.body)).toBe(202);
      // While anything is under way or waits, the session says running.
      expect((await call("GET", `/v1/sessions/${id}`)).body.state).toBe("running");
    }
    const done = await waitFor(
      "the third message's answer",
      async () => (await call("GET", `/v1/sessions/${id}`)).body,
      (s) => s.state === "idle",
      { timeoutMs: 90_000 },
    );
    expect(done.result.result).toBe(`answer to ${qs[2]}`);
    // Each message had its own model turn, in the order sent, and each turn saw the earlier answers.
    const asked = agent.model
      .turns()
      .map((t) => asks(t.body))
      .filter((q) => q !== undefined);
    expect(asked).toEqual(qs);
    expect(JSON.stringify((await askedAbout(qs[2]!)).body.messages)).toContain(`answer to ${qs[1]}`);
    // One result per message, and no `idle` between the first turn and the last answer.
    const evs = await eventsOf(id);
    const results = evs.filter((e) => e.event === "message" && e.data.type === "result");
    expect(results.map((e) => e.data.result)).toEqual(["w".repeat(40), ...qs.map((q) => `answer to ${q}`)]);
    const states = evs.filter((e) => e.event === "state").map((e) => e.data.state);
    expect(states).toEqual(["starting", "running", "idle"]);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${done.sandboxId}`);
  }, 150_000);

  it("hybrid: a sandbox hibernated by its own idle policy leaves the session hibernated, and the next message resumes it with its earlier turns", async () => {
    const marker = `policy-${Date.now()}`;
    scripts.set(marker, (body) => ({
      kind: "text",
      text: lastUserText(body).includes("second question") ? "second answer" : `first answer ${marker}`,
    }));
    const created = await call("POST", "/v1/sessions", {
      prompt: `${marker} first`,
      pattern: "hybrid",
      // The session's own quiet time is long: the sandbox's policy is what hibernates it.
      agent: { idleSeconds: 600 },
      sandbox: { idle: { afterSeconds: 3, action: "hibernate" } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    await until(id, ["idle"]);
    await sandboxIn(created.body.sandboxId, ["hibernated"]);
    const slept = await until(id, ["hibernated", "failed", "completed"]);
    expect(slept.state, JSON.stringify(slept)).toBe("hibernated");
    const sent = await call("POST", `/v1/sessions/${id}/messages`, { text: `second question ${marker}` });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const second = JSON.stringify((await askedAbout(`second question ${marker}`)).body.messages);
    expect(second).toContain(`${marker} first`);
    expect(second).toContain(`first answer ${marker}`);
    const answered = await waitFor(
      "the second answer",
      async () => (await call("GET", `/v1/sessions/${id}`)).body,
      (s) => s.result?.result === "second answer" || s.state === "failed",
      { timeoutMs: 90_000 },
    );
    expect(answered.state, JSON.stringify(answered)).not.toBe("failed");
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${created.body.sandboxId}`);
  }, 150_000);

  it("hybrid: a quiet session does not hibernate a sandbox another live session uses; both answer after", async () => {
    const marker = `neighbour-${Date.now()}`;
    // Each answer names the message it answers (the last user message may carry reminders too).
    const said = (body: unknown) =>
      ["hybrid", "other", "again"].find((w) => lastUserText(body).includes(`${marker} ${w}`)) ?? "something";
    scripts.set(marker, (body) => ({ kind: "text", text: `said ${said(body)} ${marker}` }));
    const sb = await call("POST", "/v1/sandboxes", {});
    expect(sb.status, JSON.stringify(sb.body)).toBe(201);
    const other = await call("POST", "/v1/sessions", {
      prompt: `${marker} other`,
      pattern: "long-running",
      sandbox: { id: sb.body.id },
    });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    await until(other.body.id, ["idle"]);
    const hybrid = await call("POST", "/v1/sessions", {
      prompt: `${marker} hybrid`,
      pattern: "hybrid",
      sandbox: { id: sb.body.id },
      agent: { idleSeconds: 1 },
    });
    expect(hybrid.status, JSON.stringify(hybrid.body)).toBe(201);
    const quiet = await until(hybrid.body.id, ["hibernated", "failed"]);
    expect(quiet.state).toBe("hibernated");
    expect((await call("GET", `/v1/sandboxes/${sb.body.id}`)).body.state).toBe("running");
    // The other session's agent was not stopped: it answers its next message.
    await call("POST", `/v1/sessions/${other.body.id}/messages`, { text: `${marker} again` });
    await askedAbout(`${marker} again`);
    const o = await waitFor(
      "the other session's answer",
      async () => (await call("GET", `/v1/sessions/${other.body.id}`)).body,
      (s) => s.result?.result === `said again ${marker}` || s.state === "failed",
      { timeoutMs: 90_000 },
    );
    expect(o.state, JSON.stringify(o)).toBe("idle");
    // And the quiet one resumes with its conversation.
    await call("POST", `/v1/sessions/${hybrid.body.id}/messages`, { text: `back again ${marker}` });
    expect(JSON.stringify((await askedAbout(`back again ${marker}`)).body.messages)).toContain(
      `said hybrid ${marker}`,
    );
    await call("DELETE", `/v1/sessions/${hybrid.body.id}`);
    await call("DELETE", `/v1/sessions/${other.body.id}`);
    await call("DELETE", `/v1/sandboxes/${sb.body.id}`);
  }, 150_000);

  it("the SDK's event stream is held across a server restart that takes longer than a few seconds", async () => {
    const marker = `restart-${Date.now()}`;
    scripts.set(marker, (body) => ({
      kind: "text",
      text: lastUserText(body).includes("after restart") ? `after ${marker}` : `before ${marker}`,
    }));
    const sessions = new Sessions(
      new BerthClient({ apiUrl: agent.server.url, apiKey: agent.server.adminKey }),
    );
    const s = await sessions.create({ prompt: `${marker} first`, pattern: "long-running" });
    await until(s.id, ["idle"]);
    const seen: SessionEvent[] = [];
    const reading = (async () => {
      for await (const e of sessions.events(s.id)) seen.push(e);
    })();
    await waitFor(
      "the stream to replay up to idle",
      () => seen.map((e) => (e.event === "state" ? e.data.state : e.event)),
      (v) => v.includes("idle"),
    );
    // The server is down for 8 s (the scenario: a slow restart), longer than the SDK used to retry.
    await agent.server.restart({ whileDown: () => new Promise((r) => setTimeout(r, 8_000)) });
    await sessions.send(s.id, `after restart ${marker}`);
    await waitFor(
      "the answer after the restart, on the same stream",
      () => seen.filter((e) => e.event === "message" && e.data.type === "result").map((e) => e.data.result),
      (v) => v.includes(`after ${marker}`),
      { timeoutMs: 90_000 },
    );
    await sessions.remove(s.id);
    await reading;
    // Nothing seen twice, nothing skipped: ids go up one by one, and the user's message is there.
    const ids = seen.map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
    expect(seen.some((e) => e.event === "user_message" && e.data.text === `after restart ${marker}`)).toBe(
      true,
    );
    expect(seen.at(-1)).toMatchObject({ event: "state", data: { state: "completed" } });
    await call("DELETE", `/v1/sandboxes/${s.sandboxId}`);
  }, 150_000);
});
