/**
 * The Managed Agents relay on the model gateway's port, on real HTTP over loopback, against a
 * recording stand-in for the control plane: what a worker holding one item's Berth token can and
 * cannot get relayed, and with which credential.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ModelGateway } from "./gateway.js";
import { MANAGED_AGENTS_PREFIX, ManagedAgentsRelay, type RelayGrant } from "./managed-agents-relay.js";
import { PriceTable } from "./prices.js";

const SESSIONS_TOKEN = "sk-ant-req-real-do-not-leak";
const log = pino({ level: "silent" });

/** Stands for the control plane: records each request, answers JSON, or SSE on `/events/stream`. */
async function startUpstream() {
  const hits: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    hits.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    });
    if (req.url?.includes("/events/stream")) {
      res.writeHead(200, { "content-type": "text/event-stream", "set-cookie": "a=b" });
      res.write('event: session.status_idle\ndata: {"type":"session.status_idle"}\n\n');
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "set-cookie": "a=b" }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/base`, hits, server };
}

/** Sends a request line and headers verbatim on a raw socket (paths fetch would normalise). */
function rawRequest(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    s.on("data", (c) => (text += c.toString()));
    s.on("error", reject);
    s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
    s.end(`${head}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
}

describe("managed agents relay", () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gateway: ModelGateway;
  let relay: ManagedAgentsRelay;
  let port: number;
  let token: string;
  /** Which sandbox the relay believes loopback is. */
  let loopbackIs = "sb-item";
  const grant = (): RelayGrant => ({
    sandboxId: "sb-item",
    environmentId: "env_1",
    workId: "work_1",
    sessionId: "sesn_1",
    upstream: upstream.url,
    credential: () => SESSIONS_TOKEN,
  });
  const send = (
    method: string,
    path: string,
    o: { token?: string; headers?: Record<string, string>; body?: string } = {},
  ) =>
    fetch(`http://127.0.0.1:${port}${MANAGED_AGENTS_PREFIX}${path}`, {
      method,
      headers: { authorization: `Bearer ${o.token ?? token}`, ...o.headers },
      ...(o.body ? { body: o.body } : {}),
    });

  beforeAll(async () => {
    upstream = await startUpstream();
    relay = new ManagedAgentsRelay({
      log,
      tokenFrom: (sandboxId, ip) => ip === "127.0.0.1" && sandboxId === loopbackIs,
    });
    gateway = new ModelGateway({
      upstream: "http://127.0.0.1:9",
      apiKey: "sk-model-key",
      prices: new PriceTable(),
      log,
      sideRelay: relay,
    });
    port = await gateway.start(0);
    token = relay.grant(grant());
  });
  afterAll(async () => {
    await gateway.close();
    upstream.server.close();
  });
  beforeEach(() => {
    upstream.hits.length = 0;
    loopbackIs = "sb-item";
  });

  it("relays the worker's own calls with the real credential swapped in and only allowlisted headers", async () => {
    const hb = await send(
      "POST",
      "/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=NO_HEARTBEAT",
      {
        headers: {
          "anthropic-beta": "managed-agents-2026-04-01",
          "x-api-key": token,
          cookie: "c=d",
          "x-forwarded-for": "1.2.3.4",
        },
      },
    );
    expect(hb.status).toBe(200);
    expect(hb.headers.get("set-cookie")).toBeNull();
    const events = await send("POST", "/v1/sessions/sesn_1/events", {
      headers: { "content-type": "application/json" },
      body: '{"events":[{"type":"user.tool_result"}]}',
    });
    expect(events.status).toBe(200);
    const stream = await send("GET", "/v1/sessions/sesn_1/events/stream");
    expect(await stream.text()).toContain("event: session.status_idle");

    expect(upstream.hits.map((h) => `${h.method} ${h.url}`)).toEqual([
      "POST /base/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=NO_HEARTBEAT",
      "POST /base/v1/sessions/sesn_1/events",
      "GET /base/v1/sessions/sesn_1/events/stream",
    ]);
    for (const h of upstream.hits) {
      expect(h.headers.authorization).toBe(`Bearer ${SESSIONS_TOKEN}`);
      expect(h.headers["x-api-key"]).toBeUndefined();
      expect(h.headers.cookie).toBeUndefined();
      expect(h.headers["x-forwarded-for"]).toBeUndefined();
    }
    expect(upstream.hits[0]?.headers["anthropic-beta"]).toBe("managed-agents-2026-04-01");
    expect(upstream.hits[1]?.body).toBe('{"events":[{"type":"user.tool_result"}]}');
  });

  it("refuses another item's or session's calls with 403, and sends nothing", async () => {
    for (const [method, path] of [
      ["POST", "/v1/environments/env_1/work/work_2/stop"],
      ["POST", "/v1/environments/env_2/work/work_1/heartbeat"],
      ["GET", "/v1/sessions/sesn_2"],
      ["POST", "/v1/sessions/sesn_2/events"],
      ["GET", "/v1/sessions/sesn_2/events/stream"],
    ] as const)
      expect((await send(method, path)).status, `${method} ${path}`).toBe(403);
    expect(upstream.hits).toEqual([]);
  });

  it("refuses every call a worker does not make, and every other spelling, with 404 before looking at the token", async () => {
    for (const [method, path] of [
      ["GET", "/v1/environments/env_1/work/poll"],
      ["GET", "/v1/environments/env_1/work"],
      ["POST", "/v1/sessions"],
      ["DELETE", "/v1/sessions/sesn_1"],
      ["POST", "/v1/sessions/sesn_1/archive"],
      ["POST", "/v1/messages"],
      ["GET", "/v1/models"],
      ["GET", "/v1/sessions/sesn_1/events/stream/../../sesn_2"],
    ] as const)
      expect((await send(method, path, { token: "not-a-token" })).status, `${method} ${path}`).toBe(404);
    for (const target of [
      `${MANAGED_AGENTS_PREFIX}/v1/sessions/%73esn_1`,
      `${MANAGED_AGENTS_PREFIX}//v1/sessions/sesn_1`,
      `${MANAGED_AGENTS_PREFIX}/v1/sessions/./sesn_1`,
      `http://169.254.169.254${MANAGED_AGENTS_PREFIX}/v1/sessions/sesn_1`,
    ])
      expect(
        await rawRequest(port, `GET ${target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}`),
        target,
      ).toBe(404);
    expect(upstream.hits).toEqual([]);
  });

  it("takes a token only from its own sandbox, and not once revoked", async () => {
    expect((await send("GET", "/v1/sessions/sesn_1", { token: "berth-ma-guess" })).status).toBe(401);
    loopbackIs = "sb-other";
    expect((await send("GET", "/v1/sessions/sesn_1")).status).toBe(403);
    loopbackIs = "sb-item";
    const short = relay.grant(grant());
    expect((await send("GET", "/v1/sessions/sesn_1", { token: short })).status).toBe(200);
    relay.revoke(short);
    expect((await send("GET", "/v1/sessions/sesn_1", { token: short })).status).toBe(401);
    expect(upstream.hits).toHaveLength(1);
  });
});
