/**
 * Agent sessions end to end: the real Claude Agent SDK in the server, the real `claude` binary
 * inside real runc sandboxes, the model gateway, and a FAKE model server (test/fixtures/fake-model)
 * as the only stand-in, answering with scripted turns.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { BerthClient, Sessions } from "@berth/sdk";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  isToolResult,
  MarkerScripts,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { readSse, type SseEvent } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

const REAL_KEY = `sk-ant-real-${Math.random().toString(36).slice(2)}-do-not-leak`;

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

const root = join(import.meta.dirname, "..", "..");
const execFileAsync = promisify(execFile);

/** Runs the `berth` CLI with the admin key. */
const berth = (args: string[], input = "") => runBerth(server, args, { input });

const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);

/** Waits until the session is in one of `states` (the test's own timeout bounds it). */
const until = (id: string, states: string[]) => sessionIn((p) => call("GET", p), id, states);
/** The model turn whose request mentions `text`, once it comes; else the session is shown. */
const turnWith = (id: string, text: string) =>
  waitFor(
    `the model to be asked about "${text}"`,
    async () => ({
      turn: model.turns().find((r) => JSON.stringify(r.body).includes(text)),
      session: (await call("GET", `/v1/sessions/${id}`)).body,
    }),
    (v) => v.turn !== undefined,
    { timeoutMs: 90_000 },
  ).then((v) => v.turn as NonNullable<typeof v.turn>);

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
    // ... and /metrics shows the session, the model calls, their tokens and cost.
    const scraped = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    const families = parsePrometheusTextFormat(await scraped.text()) as Array<{
      name: string;
      metrics: Array<{ value?: string; labels?: Record<string, string>; count?: string }>;
    }>;
    const metric = (name: string, labels: Record<string, string> = {}) =>
      families
        .find((f) => f.name === name)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    expect(Number(metric("berth_sessions", { state: "idle" })?.value)).toBeGreaterThanOrEqual(1);
    expect(Number(metric("berth_gateway_requests_total", { status: "200" })?.value)).toBeGreaterThanOrEqual(
      2,
    );
    expect(Number(metric("berth_gateway_request_seconds")?.count)).toBeGreaterThanOrEqual(2);
    expect(Number(metric("berth_model_tokens_total", { kind: "input" })?.value)).toBeGreaterThan(0);
    expect(Number(metric("berth_model_cost_usd_total")?.value)).toBeGreaterThan(0);
    // The log names the session on the lines about it, and never holds the real key.
    await call("GET", `/v1/sessions/${created.body.id}`);
    const lines = server.logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.sessionId === created.body.id && l.msg === "request completed")).toBe(true);
    expect(server.logLines.join("\n")).not.toContain(REAL_KEY);
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

  it("a budget is a hard cap: the session ends before it spends past maxBudgetUsd", async () => {
    const marker = `budget-${Date.now()}`;
    // Each fake answer reports about a token per 4 bytes of the request (as a real one would) and
    // asks for another tool call: the session would go on for 40 turns if the budget let it.
    scripts.set(marker, (body) => ({
      kind: "tool_use",
      name: "Bash",
      input: { command: "true", description: "again" },
      usage: { input_tokens: Math.ceil(JSON.stringify(body).length / 4), output_tokens: 20 },
    }));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      agent: { maxTurns: 40, maxBudgetUsd: 0.3 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["completed", "failed"]);
    expect(done.state).toBe("failed");
    expect(done.result.is_error).toBe(true);
    expect(done.cost.tokensUsd).toBeGreaterThan(0);
    expect(done.cost.tokensUsd).toBeLessThanOrEqual(0.3);
    const calls = model.turns().filter((t) => JSON.stringify(t.body).includes(marker)).length;
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(40);
  }, 120_000);

  it("a wall-clock limit stops a session that runs too long", async () => {
    const marker = `slow-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "slow", text: "z".repeat(400), chunks: 400, delayMs: 100 }));
    const created = await call("POST", "/v1/sessions", { prompt: marker, agent: { maxDurationSeconds: 2 } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["completed", "failed"]);
    expect(done.state).toBe("failed");
    expect(done.failureReason).toContain("maxDurationSeconds");
    expect((await call("GET", `/v1/sandboxes/${done.sandboxId}`)).body.state).toBe("deleted");
  }, 120_000);

  it("interrupt stops the current turn and the session takes the next message", async () => {
    const marker = `interrupt-${Date.now()}`;
    scripts.set(marker, (body) =>
      JSON.stringify(body.messages).includes("second turn")
        ? { kind: "text", text: "second answer" }
        : { kind: "slow", text: "y".repeat(600), chunks: 600, delayMs: 100 },
    );
    const created = await call("POST", "/v1/sessions", { prompt: marker, pattern: "long-running" });
    const id = created.body.id;
    // The model has been asked and streams the slow answer (60 s of it): the turn is under way.
    await turnWith(id, marker);
    const stop = await call("POST", `/v1/sessions/${id}/interrupt`);
    expect(stop.status).toBe(202);
    const idle = await until(id, ["idle", "failed"]);
    expect(idle.state).toBe("idle");
    expect(idle.result.subtype).not.toBe("success");
    const next = await call("POST", `/v1/sessions/${id}/messages`, { text: "second turn" });
    expect(next.status).toBe(202);
    await waitFor(
      "the second turn's answer",
      async () => (await call("GET", `/v1/sessions/${id}`)).body,
      (s) => s.state === "idle" && s.result?.result === "second answer",
    );
    await call("DELETE", `/v1/sessions/${id}`);
  }, 120_000);

  it("long-running: a later session in the same sandbox finds the files an earlier one left", async () => {
    const marker = `long-${Date.now()}`;
    scripts.set(marker, (body) => {
      if (isToolResult(body)) return { kind: "text", text: "ok" };
      return JSON.stringify(body.messages).includes(`${marker} read-phase`)
        ? {
            kind: "tool_use",
            name: "Bash",
            input: { command: `cat /home/user/${marker}`, description: "read" },
          }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: `echo kept-${marker} > /home/user/${marker}`, description: "write" },
          };
    });
    const first = await call("POST", "/v1/sessions", {
      prompt: `${marker} write it`,
      pattern: "long-running",
    });
    const a = await until(first.body.id, ["idle", "failed"]);
    await call("DELETE", `/v1/sessions/${a.id}`);
    expect((await call("GET", `/v1/sessions/${a.id}`)).body.state).toBe("completed");
    expect((await call("GET", `/v1/sandboxes/${a.sandboxId}`)).body.state).toBe("running");
    const second = await call("POST", "/v1/sessions", {
      prompt: `${marker} read-phase`,
      pattern: "long-running",
      sandbox: { id: a.sandboxId },
    });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    await until(second.body.id, ["idle", "failed"]);
    const sawFile = model
      .turns()
      .some((t) => isToolResult(t.body) && JSON.stringify(t.body.messages.at(-1)).includes(`kept-${marker}`));
    expect(sawFile).toBe(true);
    await call("DELETE", `/v1/sessions/${second.body.id}`);
    await call("DELETE", `/v1/sandboxes/${a.sandboxId}`);
  }, 120_000);

  it("shared: two sessions at once in one sandbox, each in its own working directory, unable to touch the other's", async () => {
    const marker = `shared-${Date.now()}`;
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "ok" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: {
              // Then it tries to write into every other session's directory and transcript.
              command:
                'sleep 1; pwd > where.txt; me=$(basename "$PWD"); for d in /home/user/work/* /home/user/.berth/sessions/*; do case "$d" in *"$me") ;; *) echo intruder > "$d/intruder.txt" 2>/dev/null; rm -f "$d/where.txt" "$d/.claude.json" 2>/dev/null;; esac; done; true',
              description: "where",
            },
          },
    );
    const sb = await call("POST", "/v1/sandboxes", {});
    const [one, two] = await Promise.all(
      [1, 2].map((n) =>
        call("POST", "/v1/sessions", {
          prompt: `${marker} ${n}`,
          pattern: "shared",
          sandbox: { id: sb.body.id },
        }),
      ),
    );
    expect(one!.status, JSON.stringify(one!.body)).toBe(201);
    expect(two!.status).toBe(201);
    expect(one!.body.cwd).not.toBe(two!.body.cwd);
    await Promise.all([until(one!.body.id, ["idle"]), until(two!.body.id, ["idle"])]);
    for (const s of [one!.body, two!.body]) {
      const r = await call("POST", `/v1/sandboxes/${sb.body.id}/exec`, {
        cmd: ["cat", `${s.cwd}/where.txt`],
      });
      expect(r.body.stdout).toBe(`${s.cwd}\n`);
      // The other session could not write or remove anything in its directory or transcript.
      const left = await call("POST", `/v1/sandboxes/${sb.body.id}/exec`, {
        cmd: [
          "sh",
          "-c",
          `ls ${s.cwd} /home/user/.berth/sessions/${s.id} | grep -c intruder; ls -A /home/user/.berth/sessions/${s.id}/.claude/projects | wc -l`,
        ],
      });
      const [intruders, transcriptFiles] = left.body.stdout.trim().split("\n").map(Number);
      expect(intruders).toBe(0);
      expect(transcriptFiles).toBeGreaterThan(0);
      await call("DELETE", `/v1/sessions/${s.id}`);
    }
    // The sandbox's own user (an exec through the API) is not confined.
    const free = await call("POST", `/v1/sandboxes/${sb.body.id}/exec`, {
      cmd: ["sh", "-c", `echo x > ${one!.body.cwd}/by-user && echo ok`],
    });
    expect(free.body.stdout).toBe("ok\n");
    await call("DELETE", `/v1/sandboxes/${sb.body.id}`);
  }, 120_000);

  it("hybrid: the sandbox hibernates when idle, the next message wakes it and the model gets the earlier turns, also after a restart", async () => {
    const marker = `hybrid-${Date.now()}`;
    scripts.set(marker, (body) => ({
      kind: "text",
      text: JSON.stringify(body.messages).includes("second question")
        ? "second answer"
        : `first answer ${marker}`,
    }));
    const created = await call("POST", "/v1/sessions", {
      prompt: `${marker} first`,
      pattern: "hybrid",
      agent: { idleSeconds: 1 },
    });
    const id = created.body.id;
    await until(id, ["hibernated"]);
    expect((await call("GET", `/v1/sandboxes/${created.body.sandboxId}`)).body.state).toBe("hibernated");
    const sent = await call("POST", `/v1/sessions/${id}/messages`, { text: "second question" });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    expect((await call("GET", `/v1/sandboxes/${created.body.sandboxId}`)).body.state).toBe("running");
    const second = JSON.stringify((await turnWith(id, "second question")).body.messages);
    expect(second).toContain(`${marker} first`);
    expect(second).toContain(`first answer ${marker}`);
    // The transcript is kept in the sandbox: a resume works after a server restart too.
    await until(id, ["hibernated"]);
    await server.restart();
    expect((await call("POST", `/v1/sessions/${id}/messages`, { text: "third question" })).status).toBe(202);
    expect(JSON.stringify((await turnWith(id, "third question")).body.messages)).toContain("second answer");
    await until(id, ["idle", "hibernated"]);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${created.body.sandboxId}`);
  }, 120_000);

  it("the event log replays in full after a server restart, and from Last-Event-ID", async () => {
    const marker = `replay-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "replayed" }));
    const created = await call("POST", "/v1/sessions", { prompt: marker });
    await until(created.body.id, ["completed"]);
    const before = await events(created.body.id);
    expect(before.map((e) => e.event)).toContain("message");
    expect(before.at(-1)?.data.state).toBe("completed");
    await server.restart();
    const after = await events(created.body.id);
    expect(after).toEqual(before);
    const tail = await events(created.body.id, before[2]!.id);
    expect(tail).toEqual(before.slice(3));
  }, 120_000);

  it("the SDK streams a session's messages in order and the CLI runs and attaches to agents", async () => {
    const marker = `cli-${Date.now()}`;
    scripts.set(marker, (body) =>
      JSON.stringify(body.messages).includes("follow-up")
        ? { kind: "text", text: "answer to the follow-up" }
        : { kind: "text", text: "answer from the fake model" },
    );
    const sessions = new Sessions(new BerthClient({ apiUrl: server.url, apiKey: server.adminKey }));
    const s = await sessions.create({ prompt: `${marker} sdk`, pattern: "long-running" });
    const seen: string[] = [];
    for await (const e of sessions.events(s.id, { untilIdle: true }))
      seen.push(
        e.event === "message"
          ? `${e.data.type}${e.data.subtype ? `/${e.data.subtype}` : ""}`
          : `state:${e.data.state}`,
      );
    expect(seen[0]).toBe("state:starting");
    expect(seen).toContain("system/init");
    expect(seen.indexOf("assistant")).toBeGreaterThan(seen.indexOf("system/init"));
    expect(seen.indexOf("result/success")).toBeGreaterThan(seen.indexOf("assistant"));
    expect(seen.at(-1)).toBe("state:idle");

    await execFileAsync("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
    const run = await berth(["agent", "run", `${marker} cli`]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^session ses_/);
    expect(run.stdout).toContain("answer from the fake model");
    expect(run.stdout).toContain("= success");

    const attach = await berth(["agent", "attach", s.id], "follow-up please\n");
    expect(attach.code, attach.stderr).toBe(0);
    expect(attach.stdout).toContain("answer from the fake model");
    expect(attach.stdout).toContain("answer to the follow-up");
    await sessions.remove(s.id);
    await call("DELETE", `/v1/sandboxes/${s.sandboxId}`);
  }, 120_000);

  it("usage sums sessions' tokens and compute by session, sandbox, day and tenant", async () => {
    const marker = `usage-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "counted" }));
    const created = await call("POST", "/v1/sessions", { prompt: marker });
    const done = await until(created.body.id, ["completed"]);
    expect(done.cost.computeUsd).toBeGreaterThan(0);
    expect(done.cost.totalUsd).toBeCloseTo(done.cost.tokensUsd + done.cost.computeUsd, 10);
    const bySession = await call("GET", "/v1/usage?groupBy=session");
    const row = bySession.body.items.find((r: any) => r.key === done.id);
    expect(row).toMatchObject({ tokensUsd: done.cost.tokensUsd, outputTokens: done.usage.outputTokens });
    expect(row.sandboxSeconds).toBeGreaterThan(0);
    const byTenant = await call("GET", "/v1/usage?groupBy=tenant");
    expect(byTenant.body.items).toHaveLength(1);
    expect(byTenant.body.items[0].tokensUsd).toBeGreaterThanOrEqual(done.cost.tokensUsd);
    const none = await call("GET", "/v1/usage?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z");
    expect(none.body.items).toEqual([]);
    expect((await call("GET", "/v1/usage?from=yesterday")).status).toBe(400);
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
