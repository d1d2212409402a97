import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { BerthError, type Logger } from "@berth/core";
import { installReplicaRouter, type ReplicaRouter } from "../replicas/router.js";
import type { SandboxProxy } from "./proxy.js";

/**
 * The preview listener: a server of its own (its own port, so its own origin) that serves
 * exposed ports as `/p/<sandboxId>/<port>/...` and nothing else. A page a sandbox serves there
 * shares no origin with the API or the dashboard, so it cannot read the dashboard's storage or
 * call the API with the visitor's credentials. Requests for another replica's sandboxes are
 * relayed there, as on the API's listener.
 */
export function createPreviewListener(proxy: SandboxProxy, router: ReplicaRouter, log: Logger): Server {
  const server = createServer({
    // As the API's: headers within 10 s (slowloris); bodies stream, so they get the API's bound.
    headersTimeout: 10_000,
    requestTimeout: 15 * 60_000,
    connectionsCheckingInterval: 2_000,
    keepAliveTimeout: 65_000,
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const t = proxy.target(req, "preview");
    if (t) return proxy.handleRequest(req, res, t);
    req.resume();
    const body = JSON.stringify(
      new BerthError(
        "not_found",
        "this listener serves only exposed ports, at /p/<sandboxId>/<port>/; the API is on its own port",
      ).toBody(),
    );
    res.writeHead(404, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    res.end(body);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const t = proxy.target(req, "preview");
    if (t) proxy.handleUpgrade(req, socket, head, t);
    else socket.destroy();
  });
  installReplicaRouter(server, router, log, "preview");
  return server;
}
