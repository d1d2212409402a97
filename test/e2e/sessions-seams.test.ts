/**
 * Where sessions meet their sandboxes, end to end: the real Claude Agent SDK in the server, the
 * real `claude` binary in real runc sandboxes, and a FAKE model server (test/fixtures/fake-model)
 * as the only stand-in. A turn holds its sandbox (its idle policy waits for the turn to end,
 * however long a quiet tool call takes); a forced delete of a sandbox ends the sessions in it
 * with `sandbox_lost`, with or without an agent process; a session keeps its prompt and the
 * user's messages; its events go to signed webhooks, retried after a failed delivery.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { useAgentServer } from "../support/agent-server.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

const agent = useAgentServer("seams", {
  // The test's webhook receiver listens on loopback: the admin allows just that range.
  BERTH_WEBHOOK_ALLOW_CIDRS: "127.0.0.0/8",
});
const { scripts, call } = agent;
const until = (id: string, states: string[]) => agent.until(id, states);
const sandboxIn = (id: string, states: string[], timeoutMs = 60_000) =>
  waitFor(
    `sandbox ${id} to reach ${states.join("/")}`,
    async () => (await call("GET", `/v1/sandboxes/${id}`)).body,
    (s) => states.includes(s?.state),
    { timeoutMs, everyMs: 100 },
  );

/** One Bash call running `command`, then a text answer. */
function bashOnce(command: string, answer: string) {
  return (body: any) => {
    const done = (body.messages as any[]).some(
      (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
    );
    return done
      ? { kind: "text" as const, text: answer }
      : { kind: "tool_use" as const, name: "Bash", input: { command, description: "work" } };
  };
}

/** Whether the sandbox ran the marker file's command to its end (the file exists). */
const exists = async (sandboxId: string, path: string) =>
  (await call("POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["test", "-e", path] })).body.exitCode === 0;

describe("sessions and their sandboxes", () => {
  it("a turn holds its sandbox: a quiet 10 s tool call is not paused by a 3 s idle policy; the sandbox pauses once the turn ends", async () => {
    const marker = `hold-${Date.now()}`;
    const done = `/home/user/${marker}-done`;
    // `sleep` uses no CPU and the agent sends no message meanwhile: only the turn's hold keeps it.
    scripts.set(marker, bashOnce(`sleep 10 && touch ${done}`, `slept ${marker}`));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "long-running",
      sandbox: { idle: { afterSeconds: 3, action: "pause" } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, sandboxId } = created.body;
    // A sandbox paused mid-call would freeze the agent: the turn would never end.
    const s = await until(id, ["idle", "failed"]);
    expect(s.state, JSON.stringify(s)).toBe("idle");
    expect(s.result?.result).toBe(`slept ${marker}`);
    // The hold ended with the turn: the idle policy now pauses the sandbox.
    await sandboxIn(sandboxId, ["paused"], 60_000);
    await call("POST", `/v1/sandboxes/${sandboxId}/resume`);
    expect(await exists(sandboxId, done)).toBe(true);
    await call("DELETE", `/v1/sessions/${id}`);
    await call("DELETE", `/v1/sandboxes/${sandboxId}`);
  }, 150_000);

  it("a forced delete of a sandbox ends the session running in it with sandbox_lost; unforced it is 409 in_use", async () => {
    const marker = `lost-${Date.now()}`;
    scripts.set(marker, bashOnce("sleep 120", `never ${marker}`));
    const created = await call("POST", "/v1/sessions", { prompt: marker, pattern: "long-running" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, sandboxId } = created.body;
    await until(id, ["running"]);
    const refused = await call("DELETE", `/v1/sandboxes/${sandboxId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("in_use");
    const forced = await call("DELETE", `/v1/sandboxes/${sandboxId}?force=true`);
    expect(forced.status, JSON.stringify(forced.body)).toBe(204);
    const s = await until(id, ["failed", "completed", "cancelled"]);
    expect(s.state).toBe("failed");
    expect(s.failure?.code, JSON.stringify(s)).toBe("sandbox_lost");
  }, 150_000);

  it("a session keeps its prompt and the user's messages in its transcript; a forced delete ends it hibernated (no agent process) with sandbox_lost", async () => {
    const marker = `lost-hybrid-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text" as const, text: `hello ${marker}` }));
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      pattern: "hybrid",
      agent: { idleSeconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, sandboxId } = created.body;
    const s = await until(id, ["hibernated", "failed"]);
    expect(s.state, JSON.stringify(s)).toBe("hibernated");
    // The session keeps its prompt, and the transcript has the user's messages with the agent's.
    expect(created.body.prompt).toBe(marker);
    expect(s.prompt).toBe(marker);
    const next = await call("POST", `/v1/sessions/${id}/messages`, { text: `${marker} again` });
    expect(next.status, JSON.stringify(next.body)).toBe(202);
    // Answered (the hybrid session may hibernate again at once).
    await waitFor(
      "the second turn's answer",
      async () => (await call("GET", `/v1/sessions/${id}`)).body,
      (x) => ["idle", "hibernated"].includes(x.state) && x.turns > s.turns,
      { timeoutMs: 90_000 },
    );
    await until(id, ["hibernated"]);
    const events = (
      await readSse(
        `${agent.server.url}/v1/sessions/${id}/events`,
        { headers: { authorization: `Bearer ${agent.server.adminKey}` } },
        { timeoutMs: 3_000 },
      )
    ).events;
    const said = events.filter((e) => e.event === "user_message").map((e) => e.data.text);
    expect(said).toEqual([marker, `${marker} again`]);
    const firstAnswer = events.findIndex((e) => e.event === "message" && e.data.type === "result");
    expect(firstAnswer).toBeGreaterThan(events.findIndex((e) => e.event === "user_message"));
    const forced = await call("DELETE", `/v1/sandboxes/${sandboxId}?force=true`);
    expect(forced.status, JSON.stringify(forced.body)).toBe(204);
    const lost = await until(id, ["failed", "completed", "cancelled"]);
    expect(lost.state).toBe("failed");
    expect(lost.failure?.code, JSON.stringify(lost)).toBe("sandbox_lost");
  }, 150_000);
});

/** One request the webhook receiver got. */
interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

/** A webhook receiver on loopback that answers 500 to the first request, 200 after. */
async function startReceiver(): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const status = got.length === 0 ? 500 : 200;
      got.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server };
}

/** Whether the signature header is HMAC-SHA256 of "<t>.<body>" under `secret`. */
function signedBy(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=") as [string, string]));
  if (!parts.t || !parts.v1) return false;
  const want = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest();
  const have = Buffer.from(parts.v1, "hex");
  return have.length === want.length && timingSafeEqual(have, want);
}

describe("session webhooks", () => {
  it("refuses receivers on loopback, private or link-local addresses that the admin did not allow, and other schemes", async () => {
    const before = (await call("GET", "/v1/sandboxes")).body.items.length;
    for (const url of [
      "http://10.1.2.3/h",
      "http://169.254.169.254/latest",
      "http://[::1]:80/h",
      "ftp://example.com/h",
      "nope",
    ]) {
      const r = await call("POST", "/v1/sessions", { prompt: "x", webhooks: [{ url }] });
      expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
      expect(r.body.error.message).toContain("webhooks[0].url");
    }
    // A refused create left no sandbox behind.
    expect((await call("GET", "/v1/sandboxes")).body.items.length).toBe(before);
  });

  it("POSTs the session's events in order, signed with the secret shown once at create, and retries a delivery answered 500", async () => {
    const receiver = await startReceiver();
    try {
      const marker = `hook-${Date.now()}`;
      scripts.set(marker, () => ({ kind: "text" as const, text: `done ${marker}` }));
      const created = await call("POST", "/v1/sessions", {
        prompt: marker,
        webhooks: [{ url: receiver.url, events: ["state", "user_message"] }],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const secret: string = created.body.webhookSecret;
      expect(secret).toMatch(/^whsec_/);
      const { id } = created.body;
      expect((await call("GET", `/v1/sessions/${id}`)).body.webhookSecret).toBeUndefined();
      const delivered = () => receiver.got.filter((g) => g.status === 200).map((g) => JSON.parse(g.body));
      await waitFor(
        "the webhook of the session's end",
        async () => delivered().map((d) => `${d.type}:${d.data.state ?? d.data.text}`),
        (seen) => seen.includes("state:completed"),
        { timeoutMs: 90_000 },
      );
      // Every request is signed with the session's key, over its timestamp and body.
      for (const g of receiver.got)
        expect(signedBy(secret, String(g.headers["berth-signature"]), g.body)).toBe(true);
      expect(
        signedBy(
          `${secret}x`,
          String(receiver.got[0]?.headers["berth-signature"]),
          receiver.got[0]?.body ?? "",
        ),
      ).toBe(false);
      // The first delivery was answered 500 and sent again (same delivery id, next attempt).
      const [first, second] = receiver.got;
      expect(first?.status).toBe(500);
      expect(second?.headers["berth-delivery"]).toBe(first?.headers["berth-delivery"]);
      expect(second?.headers["berth-attempt"]).toBe("2");
      expect(second?.body).toBe(first?.body);
      // In the order they happened, each once, and only the kinds asked for.
      const d = delivered();
      expect(d.every((e) => e.sessionId === id && ["state", "user_message"].includes(e.type))).toBe(true);
      const seqs = d.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(d.map((e) => `${e.type}:${e.data.state ?? e.data.text}`).slice(0, 3)).toEqual([
        "state:starting",
        `user_message:${marker}`,
        "state:running",
      ]);
    } finally {
      receiver.server.close();
    }
  }, 150_000);
});
