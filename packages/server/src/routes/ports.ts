import type { Duplex } from "node:stream";
import { BadGatewayError, BerthError, InvalidRequestError } from "@berth/core";
import { ExposedPort, ExposePortBody, ListOf, Port, PortParams, SandboxParams } from "@berth/core/contract";
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import type { PortService, PublicOrigin } from "../proxy/ports.js";
import type { SandboxProxy } from "../proxy/proxy.js";
import { relayTcpOverWebSocket } from "../proxy/tcp-over-websocket.js";
import type { App, ServerContext } from "./context.js";

/** Where the client reached the API (a TLS front says so in X-Forwarded-*). */
function originOf(req: FastifyRequest): PublicOrigin {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(",")[0]?.trim();
  return {
    proto:
      first(req.headers["x-forwarded-proto"]) ??
      ((req.raw.socket as { encrypted?: boolean }).encrypted ? "https" : "http"),
    host: first(req.headers["x-forwarded-host"]) ?? req.headers.host ?? "127.0.0.1",
  };
}

const portOf = (text: string) => {
  const n = Number(text);
  if (n > 65535) throw new InvalidRequestError("port must be 1..65535", { field: "port" });
  return n;
};

/** Connections dialed before a port-forward WebSocket is accepted, by request. */
const dialed = new WeakMap<FastifyRequest, Duplex>();

/**
 * Exposed ports (`/v1/sandboxes/:id/ports`) and the raw TCP forward over a WebSocket
 * (`/v1/sandboxes/:id/ports/:port/connect`, what `berth port-forward` uses).
 */
export function portRoutes(app: App, ctx: ServerContext, ports: PortService, proxy: SandboxProxy): void {
  const tags = ["ports"];
  app.post(
    "/v1/sandboxes/:id/ports",
    {
      schema: {
        tags,
        params: SandboxParams,
        body: ExposePortBody,
        response: { 201: ExposedPort },
      },
    },
    async (req, reply) => {
      const { port } = req.body;
      const view = await ports.expose(
        req.caller.tenantId,
        req.params.id,
        port,
        req.body.public === true,
        originOf(req),
      );
      // Connections made under the old token are not kept.
      proxy.forget(req.params.id, port);
      return reply.status(201).send(view);
    },
  );
  app.get(
    "/v1/sandboxes/:id/ports",
    { schema: { tags, params: SandboxParams, response: { 200: ListOf(Port) } } },
    async (req) => ({ items: await ports.list(req.caller.tenantId, req.params.id, originOf(req)) }),
  );
  app.delete(
    "/v1/sandboxes/:id/ports/:port",
    { schema: { tags, params: PortParams } },
    async (req, reply) => {
      const port = portOf(req.params.port);
      await ports.remove(req.caller.tenantId, req.params.id, port);
      proxy.forget(req.params.id, port);
      return reply.status(204).send();
    },
  );
  app.get(
    "/v1/sandboxes/:id/ports/:port/connect",
    {
      websocket: true,
      schema: { tags, params: PortParams },
      // Dialed before the upgrade, so "nothing listens" is an HTTP 502 the client can read.
      preValidation: async (req) => {
        const { id, port } = req.params as { id: string; port: string };
        const { client } = await ctx.sandboxes.running(req.caller.tenantId, id);
        const n = portOf(port);
        const tcp = await client.dial(n).catch((err: unknown) => {
          if (err instanceof BerthError && err.details?.errno === "ECONNREFUSED")
            throw new BadGatewayError(`nothing is listening on port ${n} in sandbox ${id}`);
          throw err;
        });
        dialed.set(req, tcp);
        // The upgrade may never happen (the client left): the connection goes with it.
        req.raw.socket.once("close", () => tcp.destroy());
      },
    },
    (socket: WebSocket, req) => {
      const tcp = dialed.get(req);
      dialed.delete(req);
      if (!tcp) return socket.close(1011, "no connection");
      const { id } = req.params as { id: string };
      // An open connection keeps the sandbox busy for idle policies, quiet or not.
      socket.once("close", ctx.sandboxes.activity.hold(id));
      relayTcpOverWebSocket(socket, tcp, () => ctx.sandboxes.touch(id));
    },
  );
}
