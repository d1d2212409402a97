// Hostile input at the boundary: control characters in env, labels and paths, volume mount
// paths that a sandbox's own symlinks would redirect, and request bodies sent too slowly. Each
// is a 4xx naming what to fix, and leaves nothing behind (no sandbox record, no file).
// Real server, real runc sandboxes, real HTTP on loopback.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let sandboxId: string;
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
/** Every sandbox record the tenant has, whatever its state. */
const allIds = async () => {
  const ids: string[] = [];
  for (const state of ["starting", "running", "paused", "hibernated", "failed", "deleted"]) {
    const r = await call("GET", `/v1/sandboxes?state=${state}&limit=1000`);
    ids.push(...r.body.items.map((s: { id: string }) => s.id));
  }
  return ids.sort();
};

beforeAll(async () => {
  server = await startTestServer({ env: { BERTH_BODY_TIMEOUT_MS: "1000" } });
  const r = await call("POST", "/v1/sandboxes", {});
  expect(r.status).toBe(201);
  sandboxId = r.body.id;
});

afterAll(async () => {
  await server?.stop();
});

describe("control characters", () => {
  it("refuses NUL and other control characters in env, labels and paths with 400 naming the field, and makes no sandbox", async () => {
    const before = await allIds();
    const refused: [string, string, unknown, string][] = [
      ["POST", "/v1/sandboxes", { env: { FOO: "a\u0000b" } }, "env.FOO"],
      ["POST", "/v1/sandboxes", { env: { FOO: "a\u001bb" } }, "env.FOO"],
      ["POST", "/v1/sandboxes", { labels: { team: "x\u0000" } }, "labels.team"],
      ["POST", "/v1/sandboxes", { labels: { team: "x\ny" } }, "labels.team"],
      ["POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["true"], env: { A: "\u0000" } }, "env.A"],
      ["POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["true"], cwd: "/work\u0001space" }, "cwd"],
      ["POST", `/v1/sandboxes/${sandboxId}/processes`, { cmd: ["true"], env: { A: "\u0007" } }, "env.A"],
      ["PATCH", `/v1/sandboxes/${sandboxId}`, { labels: { a: "\u0000" } }, "labels.a"],
      ["GET", `/v1/sandboxes/${sandboxId}/files/content?path=/workspace/a%00b`, undefined, "path"],
      ["GET", `/v1/sandboxes/${sandboxId}/files?path=/workspace/a%0Ab`, undefined, "path"],
    ];
    for (const [method, path, body, field] of refused) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error).toMatchObject({ code: "invalid_request", details: { field } });
      expect(r.body.error.message).toMatch(/control characters/);
    }
    expect(await allIds()).toEqual(before);
    // Tab and newline are meaningful in an environment value: those still work.
    const ok = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, {
      cmd: ["sh", "-c", 'printf %s "$PEM"'],
      env: { PEM: "line 1\n\tline 2" },
    });
    expect(ok.body.stdout).toBe("line 1\n\tline 2");
  });
});

describe("volume mount paths", () => {
  it("refuses a mount path through a symlink in the sandbox's files (into /proc) with 400, leaving no record", async () => {
    // A snapshot whose /workspace holds a symlink to /proc and a plain file.
    const made = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, {
      cmd: ["sh", "-c", "ln -s /proc /workspace/p && ln -s /run /workspace/r && echo x > /workspace/file"],
    });
    expect(made.body.exitCode, JSON.stringify(made.body)).toBe(0);
    const snap = await call("POST", `/v1/sandboxes/${sandboxId}/snapshots`, { name: "links" });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    const vol = await call("POST", "/v1/volumes", { name: "through-links", sizeMiB: 16 });
    expect(vol.status, JSON.stringify(vol.body)).toBe(201);
    const before = await allIds();
    for (const mountPath of ["/workspace/p", "/workspace/p/sys", "/workspace/r/berth", "/workspace/file/x"]) {
      const r = await call("POST", "/v1/sandboxes", {
        fromSnapshot: snap.body.id,
        volumes: [{ name: "through-links", mountPath }],
      });
      expect(r.status, `${mountPath}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error).toMatchObject({
        code: "invalid_request",
        details: { field: "volumes.mountPath" },
      });
    }
    expect(await allIds()).toEqual(before);
    // The volume is not held by the refused creates, and a real directory still mounts.
    const good = await call("POST", "/v1/sandboxes", {
      fromSnapshot: snap.body.id,
      volumes: [{ name: "through-links", mountPath: "/workspace/data" }],
    });
    expect(good.status, JSON.stringify(good.body)).toBe(201);
    const w = await call("POST", `/v1/sandboxes/${good.body.id}/exec`, {
      cmd: ["sh", "-c", "echo kept > /workspace/data/k && cat /workspace/data/k && readlink /workspace/p"],
    });
    expect(w.body.stdout).toBe("kept\n/proc\n");
    await call("DELETE", `/v1/sandboxes/${good.body.id}`);
    expect((await call("DELETE", "/v1/volumes/through-links")).status).toBe(204);
  }, 60_000);
});

/** Sends `head`, then `parts` one every `everyMs`, and returns what the server answered (until it closes). */
function slowRequest(head: string, parts: string[], everyMs: number, deadlineMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(Number(new URL(server.url).port), "127.0.0.1");
    let got = "";
    let i = 0;
    const drip = setInterval(() => {
      if (i < parts.length && !s.destroyed) s.write(parts[i++] as string);
    }, everyMs);
    const give = setTimeout(() => {
      s.destroy();
      resolve(`${got}\n[no answer within ${deadlineMs} ms; sent ${i} of ${parts.length} parts]`);
    }, deadlineMs);
    s.on("data", (d) => {
      got += d;
    });
    s.on("close", () => {
      clearInterval(drip);
      clearTimeout(give);
      resolve(got);
    });
    s.on("error", reject);
    s.write(head);
  });
}

describe("slow bodies", () => {
  it("answers 408 request_timeout to a JSON body that trickles in, and closes the connection", async () => {
    const body = JSON.stringify({ labels: { slow: "yes" } }).padEnd(60, " ");
    const answer = await slowRequest(
      `POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.adminKey}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      // A byte every 200 ms: never idle for long, but 60 bytes take 12 s.
      body.split(""),
      200,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('"code":"request_timeout"');
    expect(answer.toLowerCase()).toContain("connection: close");
    expect((await call("GET", "/v1/sandboxes?label=slow=yes")).body.items).toEqual([]);
  });

  it("answers 408 to an upload that stalls, and writes no file", async () => {
    const answer = await slowRequest(
      `PUT /v1/sandboxes/${sandboxId}/files/content?path=/workspace/stalled.txt HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: Bearer ${server.adminKey}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`,
      ["0123456789"],
      10,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('"code":"request_timeout"');
    const ls = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["ls", "-a", "/workspace"] });
    expect(ls.body.stdout).not.toContain("stalled");
  });

  it("answers an upload refused before its body is read (unknown sandbox), and stays up after the body stalls", async () => {
    const answer = await slowRequest(
      `PUT /v1/sandboxes/sb0000000000000000/files/content?path=/workspace/x HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: Bearer ${server.adminKey}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`,
      ["0123456789"],
      10,
      // Past the body timeout (1 s) with the connection still open.
      3_000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
    // The server is still there and serving.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const r = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["echo", "alive"] });
    expect(r.body.stdout).toBe("alive\n");
  });

  it("still takes a large upload that arrives steadily", async () => {
    const big = Buffer.alloc(8 << 20, 7);
    const put = await fetch(`${server.url}/v1/sandboxes/${sandboxId}/files/content?path=/workspace/big.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.adminKey}` },
      body: big,
    });
    expect(put.status).toBe(200);
    const st = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, {
      cmd: ["stat", "-c", "%s", "/workspace/big.bin"],
    });
    expect(st.body.stdout).toBe(`${8 << 20}\n`);
  });
});
