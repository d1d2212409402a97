import { Readable } from "node:stream";
import { PayloadTooLargeError } from "@berth/core";
import { type ConnectRouter, createConnectRouter, createContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import type { App } from "../../routes/context.js";
import { envdCallOf } from "./auth.js";
import { dropConnectionKey, envdCallKey } from "./call.js";

/** Largest Connect request body read (one message: commands, paths, stdin chunks). */
const MAX_RPC_BODY = 16 * 1024 * 1024;

/** The whole request body, refused past `max` bytes. */
async function readBody(body: Readable | undefined, max: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new PayloadTooLargeError(`a Connect request may be at most ${max} bytes`, { max });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The Connect handlers by request path, and Connect's writer of a response to Node's. */
interface Mounted {
  handlers: Map<string, UniversalHandler>;
  write: typeof import("@connectrpc/connect-node").universalResponseToNodeResponse;
}

/**
 * Serves Connect RPCs (JSON and binary, unary and streaming, as `@connectrpc/connect` implements
 * them) inside a Fastify scope, so the scope's hooks (sandbox resolution, audit) run first. The
 * body was left unparsed by the scope; it is read here and handed to the Connect handler.
 * `load` gives the services on the first call: their modules stay out of the server's start-up.
 */
export function mountConnect(app: App, load: () => Promise<(router: ConnectRouter) => void>): void {
  let mounted: Promise<Mounted> | undefined;
  const mount = async (): Promise<Mounted> => {
    const [routes, node] = await Promise.all([load(), import("@connectrpc/connect-node")]);
    const router = createConnectRouter();
    routes(router);
    const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
    return { handlers, write: node.universalResponseToNodeResponse };
  };
  app.post("/:service/:method", { schema: { hide: true } }, async (req, reply) => {
    const { service, method } = req.params as { service: string; method: string };
    // A failed load is not kept: the next call tries again.
    mounted ??= mount().catch((err: unknown) => {
      mounted = undefined;
      throw err;
    });
    const { handlers, write } = await mounted;
    const handler = handlers.get(`/${service}/${method}`);
    if (!handler) return reply.status(404).send({ code: 404, message: `no method /${service}/${method}` });
    const call = envdCallOf(req);
    const body = await readBody(req.body as Readable | undefined, MAX_RPC_BODY);
    // Aborted when the client goes away before the answer is complete (ends a followed stream).
    const abort = new AbortController();
    reply.raw.on("close", () => abort.abort());
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
    const res = await handler({
      httpVersion: req.raw.httpVersion,
      method: "POST",
      url: `http://envd${req.url}`,
      header: headers,
      body: Readable.from([body]),
      signal: abort.signal,
      contextValues: createContextValues()
        .set(envdCallKey, call)
        .set(dropConnectionKey, () => reply.raw.destroy()),
    });
    reply.hijack();
    // A dropped connection (dropConnectionKey) ends the write with an error nobody is left to hear.
    await write(res, reply.raw).catch((err: unknown) => {
      req.log.debug({ err: String(err) }, "envd response ended early");
    });
  });
}
