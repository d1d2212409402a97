/**
 * The SDK's calls beyond exec/files/processes, end to end against a full real server (runc
 * sandboxes, SQLite, loopback HTTP): lifecycle, PATCH, metrics, lifecycle events, snapshots,
 * volumes, file watch, usage, tenants, abort signals, and agent sessions with permission
 * requests, fork and workspace. The model is the FAKE model server in test/fixtures/fake-model.
 */
import {
  Audit,
  BerthClient,
  Keys,
  NotFoundError,
  Sandbox,
  type SandboxConnectOptions,
  type SessionEvent,
  Sessions,
  Snapshots,
  Tenants,
  Usage,
  Volumes,
} from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModel, MarkerScripts, startFakeModel } from "../fixtures/fake-model/server.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let model: FakeModel;
let server: TestServer;
let opts: SandboxConnectOptions;
let client: BerthClient;
const scripts = new MarkerScripts();

beforeAll(async () => {
  model = await startFakeModel(scripts.route);
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: "sk-ant-fake-sdk-parity", BERTH_ANTHROPIC_BASE_URL: model.url },
  });
  client = new BerthClient({ apiUrl: server.url, apiKey: server.adminKey });
  opts = { client };
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
});

/** Events of a session until `stop` accepts one; fails with what it saw if the stream ends first. */
async function eventUntil(
  sessions: Sessions,
  id: string,
  stop: (e: SessionEvent) => boolean,
  after?: string,
): Promise<SessionEvent> {
  const seen: string[] = [];
  for await (const e of sessions.events(id, { lastEventId: after })) {
    seen.push(e.event);
    if (stop(e)) return e;
  }
  throw new Error(`session ${id}'s events ended without the one wanted; saw ${seen.join(", ")}`);
}

/**
 * Each route of the server's OpenAPI document and the SDK call that makes it. A route the server
 * gains fails the first test until the SDK has a call for it (or it is listed in NOT_SDK). The
 * WebSocket routes are not in the document: `sb.pty` and `sb.ports.connect` make them.
 */
const SDK_CALLS: Record<string, string> = {
  "POST /v1/sandboxes": "Sandbox.create",
  "GET /v1/sandboxes": "Sandbox.list",
  "GET /v1/sandboxes/{id}": "Sandbox.connect, sb.refresh",
  "PATCH /v1/sandboxes/{id}": "sb.update",
  "DELETE /v1/sandboxes/{id}": "sb.delete",
  "POST /v1/sandboxes/{id}/extend": "sb.extend",
  "POST /v1/sandboxes/{id}/pause": "sb.pause",
  "POST /v1/sandboxes/{id}/resume": "sb.resume",
  "POST /v1/sandboxes/{id}/hibernate": "sb.hibernate",
  "POST /v1/sandboxes/{id}/wake": "sb.wake",
  "GET /v1/sandboxes/{id}/metrics": "sb.metrics",
  "GET /v1/sandboxes/{id}/events": "sb.events",
  "POST /v1/sandboxes/{id}/exec": "sb.exec",
  "POST /v1/sandboxes/{id}/snapshots": "sb.snapshot",
  "POST /v1/sandboxes/{id}/fork": "sb.fork",
  "GET /v1/snapshots": "Snapshots.list",
  "GET /v1/snapshots/{snapshotId}": "Snapshots.get",
  "DELETE /v1/snapshots/{snapshotId}": "Snapshots.remove",
  "POST /v1/volumes": "Volumes.create",
  "GET /v1/volumes": "Volumes.list",
  "GET /v1/volumes/{name}": "Volumes.get",
  "DELETE /v1/volumes/{name}": "Volumes.remove",
  "GET /v1/sandboxes/{id}/files": "sb.files.list",
  "DELETE /v1/sandboxes/{id}/files": "sb.files.remove",
  "GET /v1/sandboxes/{id}/files/content": "sb.files.read",
  "PUT /v1/sandboxes/{id}/files/content": "sb.files.write",
  "POST /v1/sandboxes/{id}/files/mkdir": "sb.files.mkdir",
  "POST /v1/sandboxes/{id}/files/move": "sb.files.move",
  "GET /v1/sandboxes/{id}/files/watch": "sb.files.watch",
  "GET /v1/sandboxes/{id}/archive": "sb.files.downloadArchive",
  "PUT /v1/sandboxes/{id}/archive": "sb.files.uploadArchive",
  "POST /v1/sandboxes/{id}/processes": "sb.processes.start",
  "GET /v1/sandboxes/{id}/processes": "sb.processes.list",
  "GET /v1/sandboxes/{id}/processes/{pid}": "sb.processes.get",
  "GET /v1/sandboxes/{id}/processes/{pid}/logs": "sb.processes.logs",
  "POST /v1/sandboxes/{id}/processes/{pid}/signal": "sb.processes.signal",
  "POST /v1/sandboxes/{id}/processes/{pid}/stdin": "sb.processes.writeStdin",
  "POST /v1/sandboxes/{id}/ports": "sb.ports.expose",
  "GET /v1/sandboxes/{id}/ports": "sb.ports.list",
  "DELETE /v1/sandboxes/{id}/ports/{port}": "sb.ports.remove",
  "POST /v1/sessions": "Sessions.create",
  "GET /v1/sessions": "Sessions.list",
  "GET /v1/sessions/{id}": "Sessions.get",
  "DELETE /v1/sessions/{id}": "Sessions.remove",
  "GET /v1/sessions/{id}/events": "Sessions.events",
  "POST /v1/sessions/{id}/messages": "Sessions.send",
  "POST /v1/sessions/{id}/interrupt": "Sessions.interrupt",
  "POST /v1/sessions/{id}/fork": "Sessions.fork",
  "GET /v1/sessions/{id}/workspace": "Sessions.workspace",
  "POST /v1/sessions/{id}/permissions/{requestId}": "Sessions.answerPermission",
  "GET /v1/templates": "Templates.list",
  "GET /v1/templates/{name}": "Templates.get",
  "PUT /v1/templates/{name}": "Templates.import",
  "DELETE /v1/templates/{name}": "Templates.remove",
  "POST /v1/templates/{name}/build": "Templates.build",
  "GET /v1/usage": "Usage.get",
  "GET /v1/tenants": "Tenants.list",
  "GET /v1/tenants/{tenantId}": "Tenants.get",
  "PATCH /v1/tenants/{tenantId}": "Tenants.setMonthlyBudget",
  "POST /v1/keys": "Keys.create",
  "GET /v1/keys": "Keys.list",
  "DELETE /v1/keys/{keyId}": "Keys.revoke",
  "GET /v1/audit": "Audit.list",
  "POST /v1/integrations/managed-agents": "ManagedAgents.add",
  "GET /v1/integrations/managed-agents": "ManagedAgents.list",
  "GET /v1/integrations/managed-agents/{id}": "ManagedAgents.get",
  "DELETE /v1/integrations/managed-agents/{id}": "ManagedAgents.remove",
};
/**
 * Routes that are not for a client of Berth's API: the model gateway (Anthropic's API, for the
 * agents), the E2B adapter, and webhooks that other services call.
 */
const NOT_SDK = [/^POST \/v1\/messages/, /\/e2b\//, /^POST \/webhooks\//];

describe("SDK parity", () => {
  it("has a call for every route of the server's OpenAPI document", async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ["get", "post", "put", "patch", "delete"].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.length).toBeGreaterThan(40);
    const missing = routes.filter((r) => !SDK_CALLS[r] && !NOT_SDK.some((x) => x.test(r)));
    expect(missing, "routes without an SDK call").toEqual([]);
    // And the table names no route the server does not have (a typo would hide a missing call).
    expect(Object.keys(SDK_CALLS).filter((r) => !routes.includes(r))).toEqual([]);
  });

  it("lists the audit trail and makes, lists and revokes a key", async () => {
    const keys = new Keys(client);
    const made = await keys.create("sdk-parity-tenant");
    expect(made.key).toMatch(/^berth_/);
    expect((await keys.list()).map((k) => k.id)).toContain(made.id);
    await keys.revoke(made.id);
    const entries = await new Audit(client).list({ from: new Date(Date.now() - 3_600_000), pageSize: 2 });
    expect(entries.some((e) => e.method === "POST" && e.path === "/v1/keys")).toBe(true);
    expect(entries.some((e) => e.method === "DELETE" && e.path.startsWith("/v1/keys/"))).toBe(true);
  });

  it("pauses, resumes, hibernates and wakes a sandbox, patches it, and reads its metrics and events", async () => {
    const sb = await Sandbox.create({ labels: { suite: "sdk-parity" } }, opts);
    try {
      await sb.files.write("/home/user/kept.txt", "still here");
      expect((await sb.pause()).state).toBe("paused");
      expect(sb.state).toBe("paused");
      expect((await sb.resume()).state).toBe("running");
      expect((await sb.hibernate()).state).toBe("hibernated");
      expect((await sb.wake()).state).toBe("running");
      expect(await sb.files.readText("/home/user/kept.txt")).toBe("still here");

      const patched = await sb.update({
        labels: { suite: "sdk-parity", stage: "patched" },
        timeoutSeconds: 900,
      });
      expect(patched.labels).toEqual({ suite: "sdk-parity", stage: "patched" });
      expect(patched.timeoutSeconds).toBe(900);
      expect(sb.labels.stage).toBe("patched");

      const m = await sb.metrics();
      expect(m.memoryBytes).toBeGreaterThan(0);
      expect(m.runningSeconds).toBeGreaterThan(0);
      expect(m.costUsd).toBeGreaterThanOrEqual(0);

      // The event log replays every state it went through; abort ends the live tail.
      const ac = new AbortController();
      const states: string[] = [];
      await expect(
        (async () => {
          for await (const e of sb.events({ signal: ac.signal })) {
            if (e.event === "state" && e.data.state) states.push(e.data.state);
            // Past hibernation and running again: the last state of the calls above.
            if (states.includes("hibernated") && states.at(-1) === "running") ac.abort();
          }
        })(),
      ).rejects.toThrow(/abort/i);
      expect(states).toEqual(expect.arrayContaining(["paused", "hibernated", "running"]));
    } finally {
      await sb.delete();
    }
  }, 120_000);

  it("snapshots a sandbox, lists and gets the snapshot, starts a sandbox from it, and removes it", async () => {
    const snapshots = new Snapshots(client);
    const src = await Sandbox.create({}, opts);
    let copy: Sandbox | undefined;
    try {
      await src.files.write("/home/user/snap.txt", "from the snapshot");
      const snap = await src.snapshot({ name: "sdk-parity" });
      expect(snap).toMatchObject({ sandboxId: src.id, name: "sdk-parity" });
      expect((await snapshots.list()).map((s) => s.id)).toContain(snap.id);
      expect((await snapshots.get(snap.id)).sizeBytes).toBe(snap.sizeBytes);
      copy = await Sandbox.create({ fromSnapshot: snap.id }, opts);
      expect(await copy.files.readText("/home/user/snap.txt")).toBe("from the snapshot");
      await snapshots.remove(snap.id);
      await expect(snapshots.get(snap.id)).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      await copy?.delete();
      await src.delete();
    }
  }, 120_000);

  it("forks a sandbox into copies that have its files, env and labels and keep their writes apart", async () => {
    const src = await Sandbox.create({ env: { FROM: "source" }, labels: { team: "a" } }, opts);
    const copies: Sandbox[] = [];
    try {
      await src.files.write("/home/user/forked.txt", "before the fork");
      copies.push(...(await src.fork({ count: 2, labels: { team: "b" } })));
      expect(copies.map((c) => c.id)).not.toContain(src.id);
      for (const c of copies) {
        expect(c.state).toBe("running");
        expect((await c.refresh()).labels).toEqual({ team: "b" });
        expect(await c.files.readText("/home/user/forked.txt")).toBe("before the fork");
        expect((await c.exec(["sh", "-c", "echo $FROM"])).stdout.trim()).toBe("source");
      }
      // Writes after the fork stay where they were made: copy, sibling and source each keep theirs.
      await copies[0].files.write("/home/user/forked.txt", "copy 0");
      await src.files.write("/home/user/forked.txt", "source after");
      expect(await copies[1].files.readText("/home/user/forked.txt")).toBe("before the fork");
      expect(await copies[0].files.readText("/home/user/forked.txt")).toBe("copy 0");
      expect(await src.files.readText("/home/user/forked.txt")).toBe("source after");
      // Bad counts are refused at the door and make nothing.
      const before = (await Sandbox.list({}, opts)).length;
      await expect(src.fork({ count: 0 })).rejects.toMatchObject({ status: 400 });
      await expect(src.fork({ count: 21 })).rejects.toMatchObject({ status: 400 });
      expect((await Sandbox.list({}, opts)).length).toBe(before);
    } finally {
      for (const c of copies) await c.delete();
      await src.delete();
    }
  }, 120_000);

  it("creates, mounts, lists, gets and removes a volume", async () => {
    const volumes = new Volumes(client);
    const made = await volumes.create("sdk-parity", { sizeMiB: 32 });
    expect(made).toMatchObject({ name: "sdk-parity", sizeMiB: 32 });
    const sb = await Sandbox.create({ volumes: [{ name: "sdk-parity", mountPath: "/data" }] }, opts);
    try {
      await sb.files.write("/data/x.txt", "on the volume");
      expect((await volumes.list()).map((v) => v.name)).toContain("sdk-parity");
      expect((await volumes.get("sdk-parity")).usedBytes).toBeGreaterThan(0);
    } finally {
      await sb.delete();
    }
    await volumes.remove("sdk-parity");
    await expect(volumes.get("sdk-parity")).rejects.toBeInstanceOf(NotFoundError);
  }, 120_000);

  it("watches files: changes after the watch resolves arrive; aborting ends the iteration", async () => {
    const sb = await Sandbox.create({}, opts);
    try {
      await sb.files.mkdir("/home/user/watched");
      const ac = new AbortController();
      const changes = await sb.files.watch("/home/user/watched", { signal: ac.signal });
      await sb.files.write("/home/user/watched/new.txt", "x");
      const seen: string[] = [];
      for await (const c of changes) {
        seen.push(`${c.type} ${c.path}`);
        if (c.path.endsWith("/new.txt")) ac.abort();
      }
      expect(
        seen.some((s) => /^(create|modify) .*\/watched\/new\.txt$/.test(s)),
        seen.join("; "),
      ).toBe(true);
    } finally {
      await sb.delete();
    }
  }, 120_000);

  it("aborts a call: an already aborted signal and one aborted mid-exec reject with the abort", async () => {
    const sb = await Sandbox.create({}, opts);
    try {
      await expect(sb.refresh({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
      const ac = new AbortController();
      const running = sb.exec("sleep 30", { signal: ac.signal });
      // Aborted once the server is running it (its process is listed), not on a timer.
      await waitFor(
        "the exec's sleep to be running",
        async () =>
          (await sb.exec("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null"))
            .stdout,
        (ps) => ps.includes("sleep 30"),
      );
      ac.abort();
      await expect(running).rejects.toMatchObject({ name: "AbortError" });
      await expect(Sandbox.list({}, { ...opts, signal: AbortSignal.abort() })).rejects.toMatchObject({
        name: "AbortError",
      });
    } finally {
      await sb.delete();
    }
  }, 120_000);

  it("runs a session: a permission request answered through the SDK, usage, fork, workspace, tenants", async () => {
    const sessions = new Sessions(client);
    const marker = `sdkperm${Date.now()}`;
    scripts.set(marker, (body) => {
      const answered = (body.messages as any[]).some(
        (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
      );
      return answered
        ? { kind: "text", text: "done after the tool" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: `echo allowed > /home/user/${marker}`, description: "write" },
          };
    });
    const s = await sessions.create({
      prompt: marker,
      pattern: "long-running",
      agent: { permissionMode: "default" },
    });
    const asked = await eventUntil(sessions, s.id, (e) => e.event === "permission_request");
    if (asked.event !== "permission_request") throw new Error("unreachable");
    expect(asked.data.tool).toBe("Bash");
    await sessions.answerPermission(s.id, asked.data.id, { behavior: "allow" });
    const idle = await eventUntil(
      sessions,
      s.id,
      (e) => e.event === "state" && ["idle", "failed"].includes(e.data.state),
      asked.id,
    );
    expect(idle.data).toMatchObject({ state: "idle" });
    const sb = await Sandbox.connect(s.sandboxId, opts);
    expect(await sb.files.readText(`/home/user/${marker}`)).toBe("allowed\n");

    const tar = await sessions.workspace(s.id);
    expect(Buffer.from(tar).includes(Buffer.from(marker))).toBe(true);

    const [forked] = await sessions.fork(s.id, { count: 1, prompt: `${marker} again` });
    expect(forked?.sandboxId).not.toBe(s.sandboxId);
    const forkDone = await eventUntil(
      sessions,
      forked?.id ?? "",
      (e) => e.event === "state" && ["idle", "failed", "completed"].includes(e.data.state),
    );
    expect(forkDone.data).toMatchObject({ state: "idle" });

    const bySession = await new Usage(client).get({ groupBy: "session" });
    expect(bySession.map((r) => r.key)).toContain(s.id);
    const tenants = await new Tenants(client).list();
    expect(tenants.length).toBeGreaterThan(0);

    for (const id of [s.id, forked?.id ?? ""]) await sessions.remove(id);
    for (const id of [s.sandboxId, forked?.sandboxId ?? ""]) await (await Sandbox.connect(id, opts)).delete();
  }, 240_000);
});
