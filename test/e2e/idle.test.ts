/**
 * Idle means idle (issue 20): an idle policy acts only on a sandbox nobody uses. Real server,
 * real runc sandboxes, real HTTP and WebSocket through the preview proxy. A busy CPU (a long
 * command with no API calls) and an open proxied connection keep a sandbox; a quiet one with
 * the same policy is paused or deleted beside it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const root = join(import.meta.dirname, "..", "..");
let server: TestServer;
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
const create = async (body: unknown) => {
  const r = await call("POST", "/v1/sandboxes", body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
/** The sandbox's state (reading a sandbox is not a use of it). */
const state = async (id: string) => (await call("GET", `/v1/sandboxes/${id}`)).body.state as string;
const until = (id: string, wanted: string) =>
  waitFor(
    `sandbox ${id} to be ${wanted}`,
    () => state(id),
    (s) => s === wanted,
    { timeoutMs: 60_000 },
  );

/**
 * Waits until the reaper has made at least one whole pass that started after this call: a
 * sandbox made now with a 1 s idle policy is deleted only in a pass after the one that first
 * read its CPU, and that one started after it existed.
 */
async function afterAWholeReaperPass(): Promise<void> {
  const marker = await create({ idle: { afterSeconds: 1, action: "delete" } });
  await until(marker, "deleted");
}

/** A sandbox running the port fixture's HTTP + WebSocket server on 8000, exposed publicly. */
async function withPortServer(idle: unknown): Promise<string> {
  const id = await create({ idle, resources: { memoryMiB: 512 } });
  const put = await fetch(`${server.url}/v1/sandboxes/${id}/files/content?path=/workspace/server.mjs`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.adminKey}` },
    body: readFileSync(join(root, "test/fixtures/port-server.mjs")),
  });
  expect(put.status).toBe(200);
  const p = await call("POST", `/v1/sandboxes/${id}/processes`, {
    cmd: ["node", "/workspace/server.mjs", "8000"],
  });
  expect(p.status).toBe(201);
  const probe = `require("net").connect(8000,"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`;
  await waitFor(
    `the port server in ${id} to listen`,
    () => call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["node", "-e", probe] }),
    (r) => r.body.exitCode === 0,
  );
  expect((await call("POST", `/v1/sandboxes/${id}/ports`, { port: 8000, public: true })).status).toBe(201);
  return id;
}

beforeAll(async () => {
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("idle means idle", () => {
  it("does not pause a sandbox whose command keeps the CPU busy with no API calls; pauses it once the command ends", async () => {
    const busy = await create({ idle: { afterSeconds: 3, action: "pause" } });
    const loop = await call("POST", `/v1/sandboxes/${busy}/processes`, {
      cmd: ["sh", "-c", "while :; do :; done"],
    });
    expect(loop.status, JSON.stringify(loop.body)).toBe(201);
    // Its twin with the same policy is made after the busy one's last API call, so its idle time ends later.
    const quiet = await create({ idle: { afterSeconds: 3, action: "pause" } });
    await until(quiet, "paused");
    await afterAWholeReaperPass();
    expect(await state(busy)).toBe("running");
    // The command ends: the sandbox is quiet now and is paused after its idle time.
    const kill = await call("POST", `/v1/sandboxes/${busy}/processes/${loop.body.pid}/signal`, {
      signal: "SIGKILL",
    });
    expect(kill.status).toBe(202);
    await until(busy, "paused");
  }, 180_000);

  it("does not pause a sandbox during a long API call that uses no CPU (an exec of sleep); pauses it after", async () => {
    const busy = await create({ idle: { afterSeconds: 3, action: "pause" } });
    const left = new AbortController();
    const exec = fetch(`${server.url}/v1/sandboxes/${busy}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ cmd: ["sleep", "600"] }),
      signal: left.signal,
    }).catch((e: Error) => e);
    // The exec has started once the sleep shows in the sandbox (that look is an API call too, so the twin comes after).
    await waitFor(
      "the sleep to run",
      () => call("POST", `/v1/sandboxes/${busy}/exec`, { cmd: ["sh", "-c", "pgrep -x sleep || true"] }),
      (r) => r.body.stdout.trim() !== "",
    );
    const quiet = await create({ idle: { afterSeconds: 3, action: "pause" } });
    await until(quiet, "paused");
    await afterAWholeReaperPass();
    expect(await state(busy)).toBe("running");
    // The client leaves: the exec ends, and nothing holds the sandbox any more.
    left.abort();
    expect(await exec).toBeInstanceOf(Error);
    await until(busy, "paused");
  }, 180_000);

  it("does not delete a sandbox with an open proxied WebSocket; deletes it once the connection closes", async () => {
    const held = await withPortServer({ afterSeconds: 3, action: "delete" });
    const ws = new WebSocket(`${server.previewUrl}/p/${held}/8000/`.replace(/^http/, "ws"));
    const hello = await new Promise<string>((resolve, reject) => {
      ws.once("message", (d) => resolve(String(d)));
      ws.once("error", reject);
    });
    expect(JSON.parse(hello).url).toBe("/");
    // The twin's last API call comes after the connection's last byte: its idle time ends later.
    const quiet = await withPortServer({ afterSeconds: 3, action: "delete" });
    await until(quiet, "deleted");
    await afterAWholeReaperPass();
    expect(await state(held)).toBe("running");
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await until(held, "deleted");
  }, 180_000);
});
