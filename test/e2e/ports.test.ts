// Exposed ports end to end: a node server in a real sandbox, reached through Berth's proxy
// (path-based and by preview host), the port-forward WebSocket, the SDK and the CLI.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { BadGatewayError, BerthClient, NotFoundError, Sandbox } from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const root = join(import.meta.dirname, "..", "..");
const DOMAIN = "preview.test";
const MiB = 1024 * 1024;

let server: TestServer;
let id: string;
let origin: string;
/** host:port of the preview listener, where `/p/...` previews are served. */
let previewOrigin: string;
/** The current token of port 8000 of `id`. */
let token: string;
const call = (method: string, path: string, body?: unknown, key = server.adminKey) =>
  api(server, key, method, path, body);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** When each chunk of the body arrived (ms since the request was sent). */
  arrivals: number[];
  text(): string;
  json(): any;
}

/**
 * An HTTP request to the Berth server as a client would send it (any Host, streamed bodies):
 * `/p/...` paths to the preview listener, the rest to the API's.
 */
function send(
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: Buffer | Readable } = {},
): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const base = path.startsWith("/p/") ? server.previewUrl : server.url;
    const req = request(`${base}${path}`, { method: o.method ?? "GET", headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      const arrivals: number[] = [];
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        arrivals.push(performance.now() - t0);
      });
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          arrivals,
          text: () => body.toString("utf8"),
          json: () => JSON.parse(body.toString("utf8")),
        });
      });
    });
    req.on("error", reject);
    if (o.body instanceof Readable) o.body.pipe(req);
    else req.end(o.body);
  });
}

/** `n` bytes of a repeatable pattern, as a stream of 1 MiB chunks, and its SHA-256. */
function pattern(n: number): { stream: () => Readable; sha256: string } {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 255;
  const h = createHash("sha256");
  for (let left = n; left > 0; left -= MiB) h.update(block.subarray(0, Math.min(MiB, left)));
  return {
    sha256: h.digest("hex"),
    stream: () =>
      Readable.from(
        (function* () {
          for (let left = n; left > 0; left -= MiB) yield block.subarray(0, Math.min(MiB, left));
        })(),
      ),
  };
}

async function putFile(sandboxId: string, path: string, content: Buffer | string) {
  const res = await fetch(`${server.url}/v1/sandboxes/${sandboxId}/files/content?path=${path}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.adminKey}` },
    body: content,
  });
  expect(res.status).toBe(200);
}

/** Waits until something accepts connections on `port` inside the sandbox. */
async function waitForPort(sandboxId: string, port: number) {
  const probe = `require("net").connect(${port},"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`;
  await waitFor(
    `something to listen on ${port} in ${sandboxId}`,
    () => call("POST", `/v1/sandboxes/${sandboxId}/exec`, { cmd: ["node", "-e", probe] }),
    (r) => r.body.exitCode === 0,
  );
}

/** Starts the fixture server on `port` in a new sandbox, listening on `host`. */
async function sandboxWithServer(port: number, host: string): Promise<string> {
  const r = await call("POST", "/v1/sandboxes", { resources: { memoryMiB: 512 } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const sandboxId = r.body.id as string;
  await putFile(
    sandboxId,
    "/workspace/server.mjs",
    readFileSync(join(root, "test/fixtures/port-server.mjs")),
  );
  const p = await call("POST", `/v1/sandboxes/${sandboxId}/processes`, {
    cmd: ["node", "/workspace/server.mjs", String(port), host],
  });
  expect(p.status).toBe(201);
  await waitForPort(sandboxId, port);
  return sandboxId;
}

const expose = async (sandboxId: string, port: number, isPublic = false) => {
  const r = await call("POST", `/v1/sandboxes/${sandboxId}/ports`, { port, public: isPublic });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { port: number; url: string; token: string | null; public: boolean };
};

/** Opens a WebSocket; resolves with it and its first message, or with the refusal's status. */
function openWs(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ ws?: WebSocket; first?: any; status?: number; body?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("message", (data) => resolve({ ws, first: JSON.parse(String(data)) }));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    ws.once("error", reject);
  });
}

const nextMessage = (ws: WebSocket) =>
  new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
    ws.once("message", (data: Buffer, isBinary) => resolve({ data, isBinary })),
  );

beforeAll(async () => {
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
  server = await startTestServer({ env: { BERTH_PREVIEW_DOMAIN: DOMAIN } });
  origin = new URL(server.url).host;
  previewOrigin = new URL(server.previewUrl).host;
  // Listening on every address: the proxy connects to the sandbox's own address.
  id = await sandboxWithServer(8000, "0.0.0.0");
});

afterAll(async () => {
  await server?.stop();
});

describe("exposed ports through the proxy", () => {
  it("exposes a port with a token, lists it without, and serves it only with the token", async () => {
    const exposed = await expose(id, 8000);
    token = exposed.token as string;
    expect(token).toMatch(/^bpt_[A-Za-z0-9_-]{43}$/);
    expect(exposed).toMatchObject({ port: 8000, public: false });
    // With a preview domain the URL is the port's own host (the server's port kept).
    expect(exposed.url).toBe(`http://8000-${id}.${DOMAIN}:${new URL(server.url).port}/`);
    const list = await call("GET", `/v1/sandboxes/${id}/ports`);
    expect(list.body.items).toEqual([
      { port: 8000, url: exposed.url, public: false, createdAt: expect.any(String) },
    ]);

    const none = await send(`/p/${id}/8000/hello`);
    expect(none.status).toBe(401);
    expect(none.json().error.code).toBe("unauthorized");
    const wrong = await send(`/p/${id}/8000/hello`, {
      headers: { "x-berth-token": `${token.slice(0, -1)}x` },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json().error.code).toBe("forbidden");
    const viaHeader = await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": token } });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.text()).toBe("hello");
  });

  it("takes the token from the query once, then from the cookie it sets; the sandbox sees none of Berth's credentials", async () => {
    const q = await send(`/p/${id}/8000/echo-headers?a=1&token=${token}&b=x%20y`);
    expect(q.status).toBe(200);
    expect(q.json().url).toBe("/echo-headers?a=1&b=x%20y");
    const cookies = q.headers["set-cookie"] as string[];
    expect(cookies).toContain("app=1; Path=/");
    expect(cookies).toContain(`berth_token=${token}; Path=/p/${id}/8000; HttpOnly; SameSite=Lax`);

    const c = await send(`/p/${id}/8000/echo-headers`, {
      headers: {
        cookie: `theirs=1; berth_token=${token}; other=2`,
        authorization: `Bearer ${server.adminKey}`,
      },
    });
    expect(c.status).toBe(200);
    const seen = c.json().headers;
    expect(seen.cookie).toBe("theirs=1; other=2");
    expect(seen.authorization).toBeUndefined();
    expect(seen["x-berth-token"]).toBeUndefined();
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe(previewOrigin);
    expect(seen["x-forwarded-prefix"]).toBe(`/p/${id}/8000`);
    expect(seen.host).toBe(previewOrigin);
    // Straight to the sandbox's address, not through berth-init's relay on its loopback.
    expect(c.json().remote).not.toBe("127.0.0.1");
    const onlyCookie = await send(`/p/${id}/8000/echo-headers`, {
      headers: { cookie: `berth_token=${token}` },
    });
    expect(onlyCookie.json().headers.cookie).toBeUndefined();

    // The bare prefix is sent to its slash, so relative links stay inside the port.
    const bare = await send(`/p/${id}/8000?token=${token}`);
    expect(bare.status).toBe(308);
    expect(bare.headers.location).toBe(`/p/${id}/8000/`);
  });

  it("streams a 50 MB upload and a 50 MB echo through, neither buffered", async () => {
    const body = pattern(50 * MiB);
    const up = await send(`/p/${id}/8000/sha256`, {
      method: "POST",
      headers: { "x-berth-token": token, "content-type": "application/octet-stream" },
      body: body.stream(),
    });
    expect(up.status).toBe(200);
    expect(up.json()).toEqual({ bytes: 50 * MiB, sha256: body.sha256 });

    // The echo's first MiB must come back before the rest is sent: only a proxy that streams
    // both ways can do that.
    const first = Buffer.alloc(MiB, 1);
    let echoed = 0;
    let rest: () => void = () => {};
    const restSent = new Promise<void>((r) => (rest = r));
    const h = createHash("sha256");
    const expected = createHash("sha256").update(first);
    const answer = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = request(
        `${server.previewUrl}/p/${id}/8000/echo`,
        { method: "POST", headers: { "x-berth-token": token, "transfer-encoding": "chunked" } },
        (res) => {
          res.on("data", (c: Buffer) => {
            h.update(c);
            echoed += c.length;
            if (echoed >= MiB) rest();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes: echoed }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.write(first);
      void restSent.then(async () => {
        for await (const chunk of pattern(49 * MiB).stream()) {
          expected.update(chunk);
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        }
        req.end();
      });
    });
    expect(answer).toEqual({ status: 200, bytes: 50 * MiB });
    expect(h.digest("hex")).toBe(expected.digest("hex"));
  });

  it("passes chunked responses and Server-Sent Events through as they are written", async () => {
    const chunked = await send(`/p/${id}/8000/chunked`, { headers: { "x-berth-token": token } });
    expect(chunked.headers["transfer-encoding"]).toBe("chunked");
    expect(chunked.text()).toBe("one\ntwo\nthree\n");
    // Written 300 ms apart in the sandbox: the first arrived long before the last.
    expect((chunked.arrivals.at(-1) as number) - (chunked.arrivals[0] as number)).toBeGreaterThan(450);

    const sse = await send(`/p/${id}/8000/sse`, {
      headers: { "x-berth-token": token, accept: "text/event-stream" },
    });
    expect(sse.headers["content-type"]).toBe("text/event-stream");
    const events = sse
      .text()
      .split("\n\n")
      .filter(Boolean)
      .map((e) => JSON.parse(e.split("data: ")[1] as string));
    expect(events.map((e) => e.n)).toEqual([1, 2, 3]);
    expect(sse.arrivals.length).toBeGreaterThanOrEqual(3);
    expect((sse.arrivals.at(-1) as number) - (sse.arrivals[0] as number)).toBeGreaterThan(450);
  });

  it("relays WebSocket upgrades with the token in a header, the query or the cookie", async () => {
    const base = `ws://${previewOrigin}/p/${id}/8000`;
    const h = await openWs(`${base}/socket?x=1`, { "x-berth-token": token, authorization: "Bearer secret" });
    const ws = h.ws as WebSocket;
    expect(h.first.url).toBe("/socket?x=1");
    expect(h.first.headers.authorization).toBeUndefined();
    expect(h.first.headers["x-berth-token"]).toBeUndefined();
    ws.send("ping");
    expect(String((await nextMessage(ws)).data)).toBe("ping");
    const blob = Buffer.alloc(200_000, 9);
    ws.send(blob);
    const back = await nextMessage(ws);
    expect(back.isBinary).toBe(true);
    expect(back.data.equals(blob)).toBe(true);
    ws.close();

    const q = await openWs(`${base}/socket?token=${token}`);
    expect(q.first.url).toBe("/socket");
    q.ws?.close();
    const c = await openWs(`${base}/`, { cookie: `berth_token=${token}` });
    expect(c.first.headers.cookie).toBeUndefined();
    c.ws?.close();
    const refused = await openWs(`${base}/`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body as string).error.code).toBe("unauthorized");
    expect((await openWs(`${base}/`, { "x-berth-token": "bpt_nope" })).status).toBe(403);
  });

  it("serves path previews only on the preview listener, which serves nothing of the API or dashboard", async () => {
    // On the API's origin a path preview is just an unknown path (it would share the dashboard's origin).
    const onApi = await fetch(`${server.url}/p/${id}/8000/hello`, { headers: { "x-berth-token": token } });
    expect(onApi.status).toBe(404);
    expect(((await onApi.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect(previewOrigin).not.toBe(origin);
    for (const path of ["/", "/v1/sandboxes", "/metrics", "/openapi.json", "/index.html"]) {
      const r = await fetch(`${server.previewUrl}${path}`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
      expect(r.status, path).toBe(404);
      expect(await r.text()).not.toContain("berth_");
    }
    const ws = await openWs(`ws://${previewOrigin}/v1/sandboxes/${id}/pty`, {
      authorization: `Bearer ${server.adminKey}`,
    }).catch((e: Error) => ({ error: e.message }));
    expect(ws).not.toHaveProperty("first");
  });

  it("routes <port>-<id>.<preview domain> to the port, HTTP and WebSocket", async () => {
    const host = `8000-${id}.${DOMAIN}`;
    const r = await send(`/echo-headers?token=${token}`, { headers: { host: `${host}:8080` } });
    expect(r.status).toBe(200);
    expect(r.json().url).toBe("/echo-headers");
    expect(r.json().headers["x-forwarded-host"]).toBe(`${host}:8080`);
    expect(r.json().headers["x-forwarded-prefix"]).toBeUndefined();
    expect(r.headers["set-cookie"]).toContain(`berth_token=${token}; Path=/; HttpOnly; SameSite=Lax`);
    // The preview host is the port's origin: even /v1/... paths go to the sandbox.
    const v1 = await send("/v1/sandboxes", { headers: { host, "x-berth-token": token } });
    expect(v1.status).toBe(404);
    expect(v1.text()).toBe("no such page");
    expect((await send("/hello", { headers: { host } })).status).toBe(401);
    // Hosts outside the preview domain are the server's own (the API, the dashboard).
    const other = await send("/v1/hello", { headers: { host: `8000-${id}.elsewhere.test` } });
    expect(other.json().error.code).toBe("unauthorized");
    const page = await send("/hello", { headers: { host: `8000-${id}.elsewhere.test` } });
    expect(page.text()).not.toBe("no such page");
    const ws = await openWs(`ws://${origin}/x`, { host, "x-berth-token": token });
    expect(ws.first.url).toBe("/x");
    ws.ws?.close();
  });

  it("rotates a token by exposing again, opens a public port to anyone, and revokes by unexposing", async () => {
    const again = await expose(id, 8000);
    expect(again.token).not.toBe(token);
    expect((await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": token } })).status).toBe(403);
    expect(
      (await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": again.token as string } })).status,
    ).toBe(200);
    token = again.token as string;

    const open = await expose(id, 8000, true);
    expect(open.token).toBeNull();
    expect(open.public).toBe(true);
    const anyone = await send(`/p/${id}/8000/hello`);
    expect(anyone.status).toBe(200);
    expect(anyone.text()).toBe("hello");

    expect((await call("DELETE", `/v1/sandboxes/${id}/ports/8000`)).status).toBe(204);
    const gone = await send(`/p/${id}/8000/hello`);
    expect(gone.status).toBe(404);
    expect(gone.json().error.code).toBe("not_found");
    expect((await call("DELETE", `/v1/sandboxes/${id}/ports/8000`)).status).toBe(404);
    expect((await call("GET", `/v1/sandboxes/${id}/ports`)).body.items).toEqual([]);
    token = (await expose(id, 8000)).token as string;
  });

  it("answers 502 when nothing listens, 404 for unexposed ports and unknown sandboxes, 400 for bad ports", async () => {
    await expose(id, 9999, true);
    const r = await send(`/p/${id}/9999/`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({
      error: { code: "bad_gateway", message: `nothing is listening on port 9999 in sandbox ${id}` },
    });
    expect((await send(`/p/${id}/7777/`)).status).toBe(404);
    expect((await send("/p/sb0000000000000000/8000/", { headers: { "x-berth-token": token } })).status).toBe(
      404,
    );
    expect((await call("POST", `/v1/sandboxes/${id}/ports`, { port: 70000 })).status).toBe(400);
    expect((await call("POST", `/v1/sandboxes/${id}/ports`, { port: "80" })).status).toBe(400);
    expect((await call("POST", "/v1/sandboxes/sb0000000000000000/ports", { port: 80 })).status).toBe(404);
  });

  it("wakes a paused sandbox for a request to its port, and counts the request as activity", async () => {
    const before = (await call("GET", `/v1/sandboxes/${id}`)).body.lastActivityAt;
    expect((await call("POST", `/v1/sandboxes/${id}/pause`)).body.state).toBe("paused");
    await sleep(20); // the clock moves on, so the activity this request counts is a later time
    const r = await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": token } });
    expect(r.status).toBe(200);
    expect(Number(r.headers["x-berth-wake-ms"])).toBeGreaterThan(0);
    const after = await call("GET", `/v1/sandboxes/${id}`);
    expect(after.body.state).toBe("running");
    expect(Date.parse(after.body.lastActivityAt)).toBeGreaterThan(Date.parse(before));
  });
});

describe("exposed ports of a hibernated sandbox, on its loopback", () => {
  it("wakes the sandbox on a request, waits for its restart-on-wake server, reaches a loopback-only app", async () => {
    const r = await call("POST", "/v1/sandboxes", { resources: { memoryMiB: 512 } });
    const sleeper = r.body.id as string;
    await putFile(
      sleeper,
      "/workspace/server.mjs",
      readFileSync(join(root, "test/fixtures/port-server.mjs")),
    );
    const p = await call("POST", `/v1/sandboxes/${sleeper}/processes`, {
      cmd: ["node", "/workspace/server.mjs", "8000", "127.0.0.1"],
      restart: "on-wake",
    });
    expect(p.status).toBe(201);
    await waitForPort(sleeper, 8000);
    await expose(sleeper, 8000, true);
    expect((await call("POST", `/v1/sandboxes/${sleeper}/hibernate`)).body.state).toBe("hibernated");
    const answer = await send(`/p/${sleeper}/8000/hello`);
    expect(answer.status, answer.text()).toBe(200);
    expect(answer.text()).toBe("hello");
    expect(Number(answer.headers["x-berth-wake-ms"])).toBeGreaterThan(0);
    expect((await call("GET", `/v1/sandboxes/${sleeper}`)).body.state).toBe("running");
    // Bound to 127.0.0.1 only: berth-init relays the connection on the sandbox's loopback.
    const seen = await send(`/p/${sleeper}/8000/echo-headers`);
    expect(seen.json().remote).toBe("127.0.0.1");
    await call("DELETE", `/v1/sandboxes/${sleeper}`);
  });
});

describe("port-forward", () => {
  it("carries raw TCP over the connect WebSocket, with Bearer auth", async () => {
    const url = `ws://${origin}/v1/sandboxes/${id}/ports/8000/connect`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${server.adminKey}` } });
    await new Promise((r, j) => ws.once("open", r).once("error", j));
    const got: Buffer[] = [];
    let eof = false;
    ws.on("message", (d: Buffer, isBinary) => {
      if (isBinary) got.push(d);
      else eof = JSON.parse(String(d)).eof;
    });
    ws.send(Buffer.from("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    await new Promise((r) => ws.once("close", r));
    const text = Buffer.concat(got).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(text.endsWith("hello")).toBe(true);
    expect(eof).toBe(true);

    const noKey = await openWs(url);
    expect(noKey.status).toBe(401);
    const nothing = await openWs(url.replace("/8000/", "/9998/"), {
      authorization: `Bearer ${server.adminKey}`,
    });
    expect(nothing.status).toBe(502);
    expect(JSON.parse(nothing.body as string).error).toEqual({
      code: "bad_gateway",
      message: `nothing is listening on port 9998 in sandbox ${id}`,
    });
  });

  it("gives the SDK ports.expose/list/remove and ports.connect (a half-closable Duplex), with typed errors", async () => {
    const client = new BerthClient({ apiUrl: server.url, apiKey: server.adminKey });
    const sb = await Sandbox.connect(id, { client });
    const p = await sb.ports.expose(8000);
    expect(p.token).toMatch(/^bpt_/);
    expect((await sb.ports.list()).map((x) => x.port)).toContain(8000);
    token = p.token as string;
    // A request, then a half-close: the answer still arrives.
    const s = await sb.ports.connect(8000);
    s.end("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*hello$/);
    await expect(sb.ports.connect(9998)).rejects.toBeInstanceOf(BadGatewayError);
    await sb.ports.expose(4444, { public: true });
    await sb.ports.remove(4444);
    await expect(sb.ports.remove(4444)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("exposes, lists and removes ports with `berth ports`", async () => {
    const berth = (...args: string[]) =>
      promisify(execFile)(process.execPath, [join(root, "packages/cli/dist/main.js"), ...args], {
        env: { PATH: process.env.PATH ?? "", BERTH_URL: server.url, BERTH_API_KEY: server.adminKey },
      });
    const out = await berth("ports", "expose", id, "8000");
    const [url, tokenLine] = out.stdout.trim().split("\n");
    expect(url).toBe(`http://8000-${id}.${DOMAIN}:${new URL(server.url).port}/`);
    const fresh = (tokenLine as string).replace("token: ", "");
    expect(out.stderr).toMatch(/shown only once/);
    expect((await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": fresh } })).status).toBe(200);
    expect((await berth("ports", "list", id)).stdout).toMatch(
      /^PORT\s+PUBLIC\s+URL[\s\S]*\n8000\s+no\s+http/,
    );
    await berth("ports", "rm", id, "8000");
    expect((await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": fresh } })).status).toBe(404);
    const bad = await berth("ports", "expose", id, "99999").catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/PORT must be a port number/) });
    token = (await expose(id, 8000)).token as string;
  });

  it("forwards a local port with `berth port-forward` until Ctrl-C", async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [join(root, "packages/cli/dist/main.js"), "port-forward", id, "8000", "0"],
      {
        env: { PATH: process.env.PATH ?? "", BERTH_URL: server.url, BERTH_API_KEY: server.adminKey },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr += c));
    const local = await new Promise<string>((resolve, reject) => {
      child.stdout?.on("data", (c: Buffer) => {
        stdout += c;
        const m = /Forwarding from (127\.0\.0\.1:\d+) -> /.exec(stdout);
        if (m) resolve(m[1] as string);
      });
      child.once("exit", (code) => reject(new Error(`port-forward exited ${code}: ${stderr}`)));
    });
    expect(stdout).toContain(`-> ${id}:8000`);
    // Several connections at once, each its own WebSocket.
    const hellos = await Promise.all(
      [1, 2, 3].map(() => fetch(`http://${local}/hello`).then((r) => r.text())),
    );
    expect(hellos).toEqual(["hello", "hello", "hello"]);
    const body = pattern(5 * MiB);
    const sum = await fetch(`http://${local}/sha256`, {
      method: "POST",
      body: body.stream() as unknown as BodyInit,
      duplex: "half",
    } as RequestInit);
    expect(await sum.json()).toEqual({ bytes: 5 * MiB, sha256: body.sha256 });
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).toBe("");
  });
});

describe("ports and tenants, ports and deletion", () => {
  it("answers 404 for another tenant's sandbox, on every ports endpoint and the forward", async () => {
    const k = await call("POST", "/v1/keys", { tenant: "ports-other" });
    expect(k.status).toBe(201);
    const other = k.body.key as string;
    expect((await call("POST", `/v1/sandboxes/${id}/ports`, { port: 8000 }, other)).status).toBe(404);
    expect((await call("GET", `/v1/sandboxes/${id}/ports`, undefined, other)).status).toBe(404);
    expect((await call("DELETE", `/v1/sandboxes/${id}/ports/8000`, undefined, other)).status).toBe(404);
    const ws = await openWs(`ws://${origin}/v1/sandboxes/${id}/ports/8000/connect`, {
      authorization: `Bearer ${other}`,
    });
    expect(ws.status).toBe(404);
    // The owner's port is untouched.
    expect((await send(`/p/${id}/8000/hello`, { headers: { "x-berth-token": token } })).status).toBe(200);
  });

  it("answers 404 once the sandbox is deleted, and forgets its ports", async () => {
    const r = await call("POST", "/v1/sandboxes", {});
    const other = r.body.id as string;
    await call("POST", `/v1/sandboxes/${other}/processes`, {
      cmd: ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"],
    });
    await waitForPort(other, 8080);
    const p = await expose(other, 8080, true);
    expect((await send(`/p/${other}/8080/`)).status).toBe(200);
    const keptAlive = await send(`/p/${other}/8080/`);
    expect(keptAlive.status).toBe(200);
    expect((await call("DELETE", `/v1/sandboxes/${other}`)).status).toBe(204);
    const after = await send(`/p/${other}/8080/`);
    expect(after.status).toBe(404);
    expect(after.json().error.code).toBe("not_found");
    expect((await call("GET", `/v1/sandboxes/${other}/ports`)).body.items).toEqual([]);
    expect(p.url).toContain(`8080-${other}`);
    expect((await call("POST", `/v1/sandboxes/${other}/ports`, { port: 8080 })).status).toBe(409);
  });
});
