/**
 * Claude Managed Agents self-hosted environments end to end: Berth claims work on the host with
 * the official `@anthropic-ai/sdk` poller and runs the official per-item worker
 * (`work.worker().handleItem()`) inside real runc sandboxes, under Node 22 from npm, through the
 * relay on the gateway's port. The only stand-in is a FAKE control plane
 * (test/fixtures/fake-managed-agents), written from the SDK's source; the test plays the agent
 * by appending `agent.tool_use` events and reads the `user.tool_result` events the worker posts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { promisify } from "node:util";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeControlPlane, startFakeControlPlane } from "../fixtures/fake-managed-agents/server.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const execFileAsync = promisify(execFile);

let server: TestServer;
const planes: FakeControlPlane[] = [];

beforeAll(async () => {
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  for (const p of planes) await p.close();
});

const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);

/** A fake control plane and a Berth integration polling it. */
async function integration(o: { maxConcurrent?: number; leaseSeconds?: number } = {}) {
  const plane = await startFakeControlPlane();
  planes.push(plane);
  if (o.leaseSeconds) plane.setLeaseSeconds(o.leaseSeconds);
  const created = await call("POST", "/v1/integrations/managed-agents", {
    environmentId: plane.environmentId,
    environmentKey: plane.environmentKey,
    baseUrl: plane.url,
    maxConcurrent: o.maxConcurrent ?? 2,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { plane, id: created.body.id as string };
}

/** Berth's view of an item, once `done` holds of it. */
async function itemIn(id: string, workId: string, done: (i: any) => boolean, timeoutMs = 60_000) {
  const found = await waitFor(
    `item ${workId} of ${id}`,
    async () =>
      (await call("GET", `/v1/integrations/managed-agents/${id}`)).body.items?.find(
        (i: any) => i.workId === workId,
      ),
    (i) => !!i && done(i),
    { timeoutMs },
  );
  return found;
}

/** Runs a tool call through the worker and answers its result's text. */
async function toolCall(
  plane: FakeControlPlane,
  sessionId: string,
  name: string,
  input: Record<string, unknown>,
  timeoutMs = 60_000,
) {
  const useId = plane.callTool(sessionId, name, input);
  const result = await waitFor(`the result of ${name}`, () => plane.resultOf(sessionId, useId), Boolean, {
    timeoutMs,
  });
  const content = (result?.content ?? []) as Array<{ text?: string }>;
  return { text: content.map((c) => c.text ?? "").join(""), isError: result?.is_error === true };
}

/** The host's pids of every process in the sandbox of the worker of `workId` (same pid namespace). */
function sandboxPids(workId: string): number[] {
  const pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  const environ = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "latin1");
    } catch {
      return "";
    }
  };
  const worker = pids.find((p) => environ(p).includes(`ANTHROPIC_WORK_ID=${workId}\0`));
  if (!worker) return [];
  const ns = readlinkSync(`/proc/${worker}/ns/pid`);
  return pids
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/ns/pid`) === ns;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("managed agents: one sandbox per work item", () => {
  it("runs bash as uid 1000 in /workspace, writes and reads a file there, and ends with the session, leaving no sandbox", async () => {
    const { plane, id } = await integration();
    const { workId, sessionId, sessionsToken } = plane.enqueueSession();
    const item = await itemIn(id, workId, (i) => i.state === "running" && i.sandboxId);

    const bash = await toolCall(plane, sessionId, "bash", { command: "id -u; pwd; node --version" });
    expect(bash.isError, bash.text).toBe(false);
    const [uid, cwd] = bash.text.trim().split("\n");
    expect(uid).toBe("1000");
    expect(cwd).toBe("/workspace");

    const write = await toolCall(plane, sessionId, "write", {
      file_path: "/workspace/notes/hello.txt",
      content: "written by the worker\n",
    });
    expect(write.isError, write.text).toBe(false);
    const read = await toolCall(plane, sessionId, "read", { file_path: "/workspace/notes/hello.txt" });
    expect(read.text).toContain("written by the worker");
    // The file is in the item's sandbox, as Berth's own API sees it.
    const inSandbox = await call("POST", `/v1/sandboxes/${item.sandboxId}/exec`, {
      cmd: ["stat", "-c", "%u %n", "/workspace/notes/hello.txt"],
    });
    expect(inSandbox.body.stdout).toContain("1000 /workspace/notes/hello.txt");

    // The worker's calls reached the control plane with the item's real sessions token (the relay swapped it in).
    const workerCalls = plane.requests.filter(
      (r) => r.path.startsWith("/v1/sessions/") || r.path.endsWith("/heartbeat"),
    );
    expect(workerCalls.length).toBeGreaterThan(0);
    expect(new Set(workerCalls.map((r) => r.bearer))).toEqual(new Set([sessionsToken]));

    plane.terminate(sessionId);
    const ended = await itemIn(id, workId, (i) => i.endedAt !== null);
    expect(ended.state, JSON.stringify(ended)).toBe("completed");
    expect(plane.item(workId)?.state).toBe("stopped");
    const sandbox = await call("GET", `/v1/sandboxes/${item.sandboxId}`);
    expect(sandbox.body.state).toBe("deleted");
    // The item's compute is in the tenant's usage, under its sandbox.
    const usage = await call("GET", "/v1/usage?groupBy=sandbox");
    expect(usage.body.items.map((r: any) => r.key)).toContain(item.sandboxId);
  }, 120_000);

  it("keeps the environment key and the sessions token out of every process environment, command line and file of the sandbox", async () => {
    const { plane, id } = await integration();
    const { workId, sessionId, sessionsToken } = plane.enqueueSession();
    const item = await itemIn(id, workId, (i) => i.state === "running" && i.sandboxId);
    // Something of the agent's own runs beside the worker: a background shell.
    const bash = await toolCall(plane, sessionId, "bash", {
      command: "(sleep 300 &) ; env | sort | grep -c .",
    });
    expect(bash.isError, bash.text).toBe(false);

    const secrets = [plane.environmentKey, sessionsToken];
    const pids = sandboxPids(workId);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    for (const pid of pids) {
      for (const file of ["environ", "cmdline"]) {
        let text = "";
        try {
          text = readFileSync(`/proc/${pid}/${file}`, "latin1");
        } catch {
          continue; // Ended meanwhile.
        }
        for (const s of secrets) expect(text.includes(s), `/proc/${pid}/${file}`).toBe(false);
      }
    }
    // Every file the sandbox can see outside the host's read-only /usr (and the kernel's views).
    const root = `/proc/${pids[0]}/root`;
    for (const s of secrets) {
      const found = await execFileAsync(
        "grep",
        [
          "-rlsF",
          "--exclude-dir=proc",
          "--exclude-dir=sys",
          "--exclude-dir=dev",
          "--exclude-dir=usr",
          s,
          `${root}/`,
        ],
        { maxBuffer: 1 << 20 },
      ).then(
        (r) => r.stdout,
        (e: { code?: number; stdout?: string }) => (e.code === 1 ? "" : String(e.stdout)),
      );
      expect(found, `files holding a secret in ${item.sandboxId}`).toBe("");
    }
    plane.terminate(sessionId);
    await itemIn(id, workId, (i) => i.endedAt !== null);
  }, 120_000);

  it("keeps its lease through a 20 s tool call by heartbeats", async () => {
    const { plane, id } = await integration({ leaseSeconds: 8 });
    const { workId, sessionId } = plane.enqueueSession();
    await itemIn(id, workId, (i) => i.state === "running");
    const before = plane.item(workId)?.heartbeats ?? 0;
    const slow = await toolCall(plane, sessionId, "bash", { command: "sleep 20; echo slept" }, 90_000);
    expect(slow.text).toContain("slept");
    const w = plane.item(workId);
    // An 8 s lease outlives no 20 s call without heartbeats: the fake would have put the item back in the queue.
    expect(w?.leaseExpiries).toBe(0);
    expect((w?.heartbeats ?? 0) - before).toBeGreaterThanOrEqual(3);
    expect(w?.state).toBe("active");
    plane.terminate(sessionId);
    await itemIn(id, workId, (i) => i.endedAt !== null);
  }, 150_000);

  it("ends an item when the control plane stops it, and deletes its sandbox", async () => {
    const { plane, id } = await integration({ leaseSeconds: 4 });
    const { workId } = plane.enqueueSession();
    const item = await itemIn(id, workId, (i) => i.state === "running" && i.sandboxId);
    plane.requestStop(workId);
    const ended = await itemIn(id, workId, (i) => i.endedAt !== null);
    expect(ended.state).toBe("completed");
    expect(plane.item(workId)?.state).toBe("stopped");
    expect((await call("GET", `/v1/sandboxes/${item.sandboxId}`)).body.state).toBe("deleted");
  }, 120_000);

  it("runs at most maxConcurrent items at once; the rest wait unclaimed in the queue", async () => {
    const { plane, id } = await integration({ maxConcurrent: 2 });
    const sessions = [plane.enqueueSession(), plane.enqueueSession(), plane.enqueueSession()];
    const states = () => sessions.map((s) => plane.item(s.workId)?.state);
    await waitFor("two items to run", states, (s) => s.filter((x) => x === "active").length === 2, {
      timeoutMs: 60_000,
    });
    const waiting = sessions.find((s) => plane.item(s.workId)?.state === "queued");
    expect(waiting, JSON.stringify(states())).toBeDefined();
    // The running ones heartbeat a while: the third is still not claimed meanwhile.
    const running = sessions.filter((s) => s !== waiting);
    const beats = () => running.map((s) => plane.item(s.workId)?.heartbeats ?? 0);
    const start = beats();
    const counts = await call("GET", `/v1/integrations/managed-agents/${id}`);
    expect(counts.body.counts.running).toBe(2);
    await toolCall(plane, running[0]!.sessionId, "bash", { command: "echo busy" });
    await toolCall(plane, running[1]!.sessionId, "bash", { command: "echo busy" });
    expect(beats().every((b, i) => b >= (start[i] ?? 0))).toBe(true);
    expect(plane.item(waiting!.workId)?.state).toBe("queued");

    plane.terminate(running[0]!.sessionId);
    await waitFor(
      "the waiting item to be claimed",
      () => plane.item(waiting!.workId)?.state,
      (s) => s === "active",
      {
        timeoutMs: 60_000,
      },
    );
    for (const s of sessions) plane.terminate(s.sessionId);
    for (const s of sessions) await itemIn(id, s.workId, (i) => i.endedAt !== null);
  }, 150_000);
});

describe("managed agents: the API", () => {
  it("webhook mode claims work only when a verified session.status_run_started webhook arrives", async () => {
    const plane = await startFakeControlPlane();
    planes.push(plane);
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    const created = await call("POST", "/v1/integrations/managed-agents", {
      environmentId: plane.environmentId,
      environmentKey: plane.environmentKey,
      baseUrl: plane.url,
      webhookSecret: secret,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.mode).toBe("webhook");
    expect(JSON.stringify(created.body)).not.toContain(secret);
    const id = created.body.id as string;
    const polls = () => plane.requests.filter((r) => r.path.endsWith("/work/poll")).length;
    // One pass at start, over an empty queue.
    await waitFor("the first pass over the queue", polls, (n) => n === 1);
    const { workId, sessionId } = plane.enqueueSession();
    const payload = JSON.stringify({
      type: "event",
      id: "wevt_1",
      created_at: new Date().toISOString(),
      data: { type: "session.status_run_started", id: sessionId, organization_id: "o", workspace_id: "w" },
    });
    const hook = (key: string) => {
      const at = new Date();
      return fetch(`${server.url}/webhooks/managed-agents/${id}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": "msg_1",
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": new Webhook(key).sign("msg_1", at, payload),
        },
        body: payload,
      });
    };
    const forged = await hook(`whsec_${randomBytes(24).toString("base64")}`);
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as any).error.code).toBe("invalid_signature");
    expect(polls()).toBe(1);
    expect(plane.item(workId)?.state).toBe("queued");

    expect((await hook(secret)).status).toBe(204);
    await itemIn(id, workId, (i) => i.state === "running");
    const bash = await toolCall(plane, sessionId, "bash", { command: "echo by-webhook" });
    expect(bash.text).toContain("by-webhook");
    plane.terminate(sessionId);
    await itemIn(id, workId, (i) => i.state === "completed");
    await call("DELETE", `/v1/integrations/managed-agents/${id}`);
  }, 120_000);

  it("validates the request, never returns the key, and stores it encrypted", async () => {
    const bad = await call("POST", "/v1/integrations/managed-agents", { environmentId: "env_x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
    const badUrl = await call("POST", "/v1/integrations/managed-agents", {
      environmentId: "env_x",
      environmentKey: "sk-ant-something-long",
      baseUrl: "ftp://example.com",
    });
    expect(badUrl.status).toBe(400);
    expect(badUrl.body.error.details.field).toBe("baseUrl");
    expect((await call("GET", "/v1/integrations/managed-agents/ma_nope")).status).toBe(404);

    const { plane, id } = await integration();
    for (const path of [`/v1/integrations/managed-agents/${id}`, "/v1/integrations/managed-agents"]) {
      const shown = await call("GET", path);
      expect(shown.status).toBe(200);
      expect(JSON.stringify(shown.body)).not.toContain(plane.environmentKey);
    }
    // The database and its write-ahead log: a fresh row may be in either.
    const files = readdirSync(server.dataDir).filter((f) => f.startsWith("berth.db"));
    expect(files).toContain("berth.db");
    for (const f of files)
      expect(readFileSync(`${server.dataDir}/${f}`).includes(Buffer.from(plane.environmentKey)), f).toBe(
        false,
      );

    const removed = await call("DELETE", `/v1/integrations/managed-agents/${id}`);
    expect(removed.status).toBe(200);
    expect(removed.body.state).toBe("deleted");
    const listed = await call("GET", "/v1/integrations/managed-agents");
    expect(listed.body.items.map((i: any) => i.id)).not.toContain(id);
  }, 60_000);

  it("another tenant's key sees none of it: 404 on get and delete, an empty list", async () => {
    const { id } = await integration();
    const made = await call("POST", "/v1/keys", { tenant: "managed-other" });
    expect(made.status).toBe(201);
    const other = (method: string, path: string) => api(server, made.body.key, method, path);
    expect((await other("GET", `/v1/integrations/managed-agents/${id}`)).status).toBe(404);
    expect((await other("DELETE", `/v1/integrations/managed-agents/${id}?force=true`)).status).toBe(404);
    expect((await other("GET", "/v1/integrations/managed-agents")).body.items).toEqual([]);
    // A tenant may not point the server at another control plane (its network, the metadata service).
    const elsewhere = await api(server, made.body.key, "POST", "/v1/integrations/managed-agents", {
      environmentId: "env_x",
      environmentKey: "sk-ant-something-long",
      baseUrl: "http://169.254.169.254/latest",
    });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.code).toBe("forbidden");
    expect((await call("GET", `/v1/integrations/managed-agents/${id}`)).body.state).toBe("active");
    await call("DELETE", `/v1/integrations/managed-agents/${id}`);
  }, 60_000);

  it("a delete without force stops claiming and lets the running item end; then the integration is deleted", async () => {
    const { plane, id } = await integration();
    const { workId, sessionId } = plane.enqueueSession();
    await itemIn(id, workId, (i) => i.state === "running");
    const removed = await call("DELETE", `/v1/integrations/managed-agents/${id}`);
    expect(removed.body.state).toBe("draining");
    // Claiming has stopped: a new item stays in the queue.
    const queued = plane.enqueueSession();
    // The running item still works.
    const bash = await toolCall(plane, sessionId, "bash", { command: "echo still-here" });
    expect(bash.text).toContain("still-here");
    plane.terminate(sessionId);
    await itemIn(id, workId, (i) => i.state === "completed");
    await waitFor(
      "the integration to be deleted",
      async () => (await call("GET", `/v1/integrations/managed-agents/${id}`)).body.state,
      (s) => s === "deleted",
    );
    expect(plane.item(queued.workId)?.state).toBe("queued");
  }, 120_000);

  it("a forced delete stops running items and deletes their sandboxes", async () => {
    const { plane, id } = await integration();
    const { workId } = plane.enqueueSession();
    const item = await itemIn(id, workId, (i) => i.state === "running" && i.sandboxId);
    const removed = await call("DELETE", `/v1/integrations/managed-agents/${id}?force=true`);
    expect(removed.body.state).toBe("deleted");
    const ended = await itemIn(id, workId, (i) => i.endedAt !== null);
    expect(ended.state).toBe("stopped");
    expect(plane.item(workId)?.state).toBe("stopped");
    expect((await call("GET", `/v1/sandboxes/${item.sandboxId}`)).body.state).toBe("deleted");
  }, 120_000);

  it("a restart mid-item stops the item cleanly, deletes its sandbox, and polls again after", async () => {
    const { plane, id } = await integration();
    const first = plane.enqueueSession();
    const item = await itemIn(id, first.workId, (i) => i.state === "running" && i.sandboxId);
    await server.restart();
    const ended = await itemIn(id, first.workId, (i) => i.endedAt !== null);
    expect(ended.state).toBe("stopped");
    expect(plane.item(first.workId)?.state).toBe("stopped");
    expect((await call("GET", `/v1/sandboxes/${item.sandboxId}`)).body.state).toBe("deleted");
    // Nothing is left half-claimed, and the integration polls again.
    const second = plane.enqueueSession();
    await itemIn(id, second.workId, (i) => i.state === "running");
    const bash = await toolCall(plane, second.sessionId, "bash", { command: "echo after-restart" });
    expect(bash.text).toContain("after-restart");
    plane.terminate(second.sessionId);
    await itemIn(id, second.workId, (i) => i.endedAt !== null);
  }, 150_000);
});
