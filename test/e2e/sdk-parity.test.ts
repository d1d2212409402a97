/**
 * The SDK's calls beyond exec/files/processes, end to end against a full real server (runc
 * sandboxes, SQLite, loopback HTTP): lifecycle, PATCH, metrics, lifecycle events, snapshots,
 * volumes, file watch, usage, tenants, abort signals, and agent sessions with permission
 * requests, fork and workspace. The model is the FAKE model server in test/fixtures/fake-model.
 */
import {
  BerthClient,
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

describe("SDK parity", () => {
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
