// Two `berth serve` replicas sharing one PostgreSQL, each with its own runtime: any replica
// answers any request (forwarded to the one holding the sandbox), the reaper acts once per
// sandbox, event streams resume on the other replica, and killing one mid-load leaves the
// other serving and the killed one's sandboxes intact for its restart.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
// @ts-expect-error: a plain ES module shared with `npm run bench`
import { runLoad } from "../../bench/load.mjs";
import { startPostgres } from "../support/postgres.js";
import { api } from "../support/server.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

let pg: { url: string; stop(): Promise<void> };
let a: ServerProcess;
let b: ServerProcess;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const on = (s: ServerProcess, method: string, path: string, body?: unknown) =>
  api(s, s.adminKey, method, path, body);

beforeAll(async () => {
  execFileSync("npx", ["tsc", "-b", "packages/cli"], { cwd: `${import.meta.dirname}/../..` });
  pg = await startPostgres();
  a = await startServerProcess({ BERTH_DATABASE_URL: pg.url });
  b = await startServerProcess({ BERTH_DATABASE_URL: pg.url });
});

afterAll(async () => {
  for (const s of [a, b]) await s?.purge();
  await pg?.stop();
});

describe("replicas sharing PostgreSQL", () => {
  it("answers any request on any replica: exec, files, ports, WebSockets and snapshots of the other's sandboxes", async () => {
    const s = await on(a, "POST", "/v1/sandboxes", {});
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const id = s.body.id as string;
    // Through B, which forwards to A whose runtime holds it.
    const r = await on(b, "POST", `/v1/sandboxes/${id}/exec`, { cmd: ["hostname"] });
    expect(r.body.stdout).toBe(`${id}\n`);
    // An encoded form of the path is the same route, so it goes to A too (B holds nothing of it).
    const encoded = await on(b, "POST", `/%761/sandboxes/${id}/exec`, { cmd: ["hostname"] });
    expect(encoded.status, JSON.stringify(encoded.body)).toBe(200);
    expect(encoded.body.stdout).toBe(`${id}\n`);
    const put = await fetch(`${b.url}/v1/sandboxes/${id}/files/content?path=/workspace/x.txt`, {
      method: "PUT",
      headers: { authorization: `Bearer ${b.adminKey}` },
      body: "via b",
    });
    expect(put.status).toBe(200);
    expect(
      (await on(a, "POST", `/v1/sandboxes/${id}/exec`, { cmd: ["cat", "/workspace/x.txt"] })).body.stdout,
    ).toBe("via b");
    // Lists come from the store: both replicas see both replicas' sandboxes.
    const t = await on(b, "POST", "/v1/sandboxes", {});
    for (const s2 of [a, b]) {
      const ids = (await on(s2, "GET", "/v1/sandboxes")).body.items.map((x: { id: string }) => x.id);
      expect(ids).toEqual(expect.arrayContaining([id, t.body.id]));
    }
    // An exposed port of A's sandbox, reached through B's proxy.
    await on(a, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/workspace"],
    });
    await on(b, "POST", `/v1/sandboxes/${id}/ports`, { port: 8080, public: true });
    const page = await waitFor(
      "the port's page through B",
      () => fetch(`${b.previewUrl}/p/${id}/8080/x.txt`).then((x) => x.text()),
      (text) => text.includes("via b"),
    );
    expect(page).toBe("via b");
    // A PTY WebSocket opened on B.
    const ws = new WebSocket(`${b.url.replace("http", "ws")}/v1/sandboxes/${id}/pty`, {
      headers: { authorization: `Bearer ${b.adminKey}` },
    });
    let out = "";
    ws.on("message", (d) => {
      out += d.toString();
    });
    await new Promise((res, rej) => ws.once("open", res).once("error", rej));
    ws.send(Buffer.from("echo pty-$((40+2))\n"));
    await waitFor(
      "the terminal's answer",
      () => out,
      (text) => text.includes("pty-42"),
    );
    ws.close();
    expect(out).toContain("pty-42");
    // A snapshot taken through B lives with A; a create from it through B is made by A.
    const snap = await on(b, "POST", `/v1/sandboxes/${id}/snapshots`, {});
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    const copy = await on(b, "POST", "/v1/sandboxes", { fromSnapshot: snap.body.id });
    expect(copy.status, JSON.stringify(copy.body)).toBe(201);
    expect(
      (await on(b, "POST", `/v1/sandboxes/${copy.body.id}/exec`, { cmd: ["cat", "/workspace/x.txt"] })).body
        .stdout,
    ).toBe("via b");
    expect((await on(b, "DELETE", `/v1/snapshots/${snap.body.id}`)).status).toBe(204);
    for (const x of [id, t.body.id, copy.body.id])
      expect((await on(b, "DELETE", `/v1/sandboxes/${x}`)).status).toBe(204);
  });

  it("reaps each sandbox once, whichever replica holds it, and resumes its event stream on the other replica", async () => {
    const made = [];
    for (const s of [a, b, a, b])
      made.push((await on(s, "POST", "/v1/sandboxes", { timeoutSeconds: 2 })).body.id as string);
    await waitFor(
      "every sandbox to be reaped at its timeout",
      () => Promise.all(made.map(async (id) => (await on(b, "GET", `/v1/sandboxes/${id}`)).body.state)),
      (states) => states.every((s) => s === "deleted"),
    );
    for (const id of made) {
      const { events } = await readSse(
        `${b.url}/v1/sandboxes/${id}/events`,
        { headers: { authorization: `Bearer ${b.adminKey}` } },
        { timeoutMs: 1500 },
      );
      const ends = events.filter((e) => e.event === "state" && e.data.state === "deleted");
      expect(ends, `${id}: ${JSON.stringify(events)}`).toHaveLength(1);
      expect(events.filter((e) => e.event === "timeout")).toHaveLength(1);
      // Replayed on A from after the first event: the same events, none twice.
      const { events: fromA } = await readSse(
        `${a.url}/v1/sandboxes/${id}/events`,
        { headers: { authorization: `Bearer ${a.adminKey}`, "last-event-id": String(events[0]?.id) } },
        { timeoutMs: 1500 },
      );
      expect(fromA.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
    }
  });

  it("keeps serving on one replica while the other is SIGKILLed mid-load, and loses none of the killed one's sandboxes", async () => {
    const keep = (await on(a, "POST", "/v1/sandboxes", {})).body.id as string;
    await on(a, "POST", `/v1/sandboxes/${keep}/exec`, { cmd: ["sh", "-c", "echo survives > /workspace/s"] });
    const loadA = runLoad({ url: a.url, key: a.adminKey, clients: 2, seconds: 8, retryMs: 100 });
    const loadB = runLoad({ url: b.url, key: b.adminKey, clients: 2, seconds: 8, retryMs: 100 });
    await sleep(3000); // the behaviour under test: A dies in the middle of the load
    await a.kill("SIGKILL");
    // While A is down, B answers for A's sandbox with a clear 503, and serves its own.
    const down = await on(b, "POST", `/v1/sandboxes/${keep}/exec`, { cmd: ["true"] });
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("replica_unavailable");
    const [ra, rb] = await Promise.all([loadA, loadB]);
    console.log(
      `during the kill: A ${ra.loops} loops, ${ra.errors} errors; B ${rb.loops} loops, ${rb.errors} errors`,
    );
    expect(rb.errors).toBe(0);
    expect(rb.loops).toBeGreaterThan(0);
    await a.start();
    // A's sandbox came back with A, and B never touched it.
    const back = await on(b, "POST", `/v1/sandboxes/${keep}/exec`, { cmd: ["cat", "/workspace/s"] });
    expect(back.body.stdout).toBe("survives\n");
    // Every sandbox either replica still lists is served by its holder.
    for (const state of ["running"]) {
      const items = (await on(b, "GET", `/v1/sandboxes?state=${state}&limit=500`)).body.items as Array<{
        id: string;
      }>;
      for (const x of items) {
        const r = await on(b, "POST", `/v1/sandboxes/${x.id}/exec`, { cmd: ["true"] });
        expect(r.body.exitCode, `${x.id}: ${JSON.stringify(r.body)}`).toBe(0);
        await on(b, "DELETE", `/v1/sandboxes/${x.id}`);
      }
    }
    expect(readFileSync(`${a.dataDir}/replica-id`, "utf8")).toMatch(/^r[0-9a-f]{12}/);
  });
});
