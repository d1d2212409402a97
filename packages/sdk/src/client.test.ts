// The client's wire handling against a real loopback HTTP server that plays a scripted part.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ConflictError, NotFoundError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { BerthClient } from "./client.js";
import { ConnectionError } from "./errors.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let server: Server;
let client: BerthClient;
const seenLastEventIds: (string | undefined)[] = [];

beforeAll(async () => {
  server = createServer((req, res) => handler(req, res));
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (req.headers.authorization !== "Bearer k") {
      socket.end(
        'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\r\n{"error":{"code":"not_found","message":"sandbox \'x\' not found","details":{"kind":"sandbox","id":"x"}}}',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (m, bin) => ws.send(m, { binary: bin })));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  client = new BerthClient({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    apiKey: "k",
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("BerthClient", () => {
  it("turns error bodies into the typed errors of @berth/core", async () => {
    handler = (req, res) => {
      const conflict = req.url?.startsWith("/conflict");
      res.writeHead(conflict ? 409 : 404, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          conflict
            ? { error: { code: "conflict", message: "sandbox is paused", details: { state: "paused" } } }
            : {
                error: {
                  code: "not_found",
                  message: "sandbox 'sb1' not found",
                  details: { kind: "sandbox", id: "sb1" },
                },
              },
        ),
      );
    };
    const nf = await client.json("GET", "/v1/sandboxes/sb1").catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(NotFoundError);
    expect(nf).toMatchObject({ code: "not_found", status: 404, message: "sandbox 'sb1' not found" });
    await expect(client.json("POST", "/conflict")).rejects.toMatchObject({
      constructor: ConflictError,
      details: { state: "paused" },
    });
  });

  it("resumes a dropped event stream with Last-Event-ID and loses or repeats nothing", async () => {
    seenLastEventIds.length = 0;
    const all = ["a", "b", "c", "d", "e"];
    handler = (req, res) => {
      const last = req.headers["last-event-id"] as string | undefined;
      seenLastEventIds.push(last);
      const from = last === undefined ? 0 : Number(last) + 1;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("retry: 10\n\n");
      // Each connection delivers two events then dies mid-event, as a flaky proxy would.
      for (let i = from; i < Math.min(from + 2, all.length); i++)
        res.write(`id: ${i}\nevent: stdout\ndata: {"data":"${all[i]}"}\n\n`);
      if (from + 2 >= all.length) res.end('event: exit\ndata: {"exitCode":0}\n\n');
      else {
        // The connection dies once the half event is handed to the socket (sent before the close).
        res.write('id: 99\nevent: stdout\ndata: {"data":"LOST', () => res.destroy());
      }
    };
    const got: string[] = [];
    for await (const ev of client.stream("GET", "/logs", {
      reconnect: true,
      isLast: (e) => e.event === "exit",
    }))
      got.push(ev.event === "exit" ? "exit" : (JSON.parse(ev.data) as { data: string }).data);
    expect(got).toEqual([...all, "exit"]);
    expect(seenLastEventIds).toEqual([undefined, "1", "3"]);
  });

  it("does not reconnect a stream that was not asked to, and surfaces an error event as its typed error", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(
        'event: stdout\ndata: {"data":"x"}\n\nevent: error\ndata: {"error":{"code":"conflict","message":"no"}}\n\n',
      );
    };
    const got: string[] = [];
    const run = async () => {
      for await (const ev of client.stream("POST", "/exec", { isLast: (e) => e.event === "exit" }))
        got.push(ev.event);
    };
    await expect(run()).rejects.toBeInstanceOf(ConflictError);
    expect(got).toEqual(["stdout"]);
  });

  it("reports an unreachable server as ConnectionError", async () => {
    const dead = new BerthClient({ apiUrl: "http://127.0.0.1:9", apiKey: "k" });
    await expect(dead.json("GET", "/v1/sandboxes")).rejects.toBeInstanceOf(ConnectionError);
  });

  it("opens authenticated WebSockets and turns a refused upgrade into the typed error", async () => {
    const ws = await client.websocket("/pty", { cols: 80 });
    const echoed = new Promise<Buffer>((r) => ws.once("message", (m: Buffer) => r(m)));
    ws.send(Buffer.from([1, 2, 3]));
    expect([...(await echoed)]).toEqual([1, 2, 3]);
    ws.close();
    const other = new BerthClient({ apiUrl: client.apiUrl, apiKey: "wrong" });
    await expect(other.websocket("/pty")).rejects.toBeInstanceOf(NotFoundError);
  });
});
