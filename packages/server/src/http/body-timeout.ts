import { PassThrough, type Readable } from "node:stream";
import { RequestTimeoutError, SETTINGS } from "@berth/core";
import type { FastifyInstance, FastifyRequest } from "fastify";

/** Requests whose body streams to its handler (uploads): bounded by pauses, not by total time. */
const streamed = new WeakSet<FastifyRequest>();

/** Marks the routes of `scope` as streaming their bodies (see installBodyTimeout). */
export function streamsBodies(scope: FastifyInstance): void {
  scope.addHook("onRequest", async (req) => {
    streamed.add(req);
  });
}

/**
 * Bounds how long a client may take to send a request body, so a slow sender cannot hold a
 * request (and its socket, and a parser's buffer) for minutes: a body read into memory (JSON)
 * must arrive whole within `ms`; a streamed upload may not pause for longer than `ms`. Past it
 * the request is answered 408 `request_timeout` and its connection closed.
 */
export function installBodyTimeout(app: FastifyInstance, ms: number): void {
  app.addHook("preParsing", async (req, reply, payload) => {
    const h = req.headers;
    if (h["transfer-encoding"] === undefined && (h["content-length"] ?? "0") === "0") return payload;
    const idle = streamed.has(req);
    const out = new PassThrough() as PassThrough & { receivedEncodedLength: number };
    out.receivedEncodedLength = 0;
    let timer: NodeJS.Timeout | undefined;
    const expire = () => {
      payload.unpipe(out);
      // Whatever is still on its way is not read: the connection ends with the answer.
      void reply.header("connection", "close");
      out.destroy(
        new RequestTimeoutError(
          idle
            ? `the request body stalled for ${ms} ms (${SETTINGS.bodyTimeoutMs.env}); send it without pauses`
            : `the request body did not arrive within ${ms} ms (${SETTINGS.bodyTimeoutMs.env})`,
          { timeoutMs: ms },
        ),
      );
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(expire, ms);
    };
    payload.on("data", (c: Buffer) => {
      out.receivedEncodedLength += c.length;
      if (idle) arm();
    });
    payload.once("end", () => clearTimeout(timer));
    payload.once("error", (e) => out.destroy(e));
    out.once("close", () => clearTimeout(timer));
    // A handler may answer without reading the body (a 404 before an upload): then nobody
    // waits for it, and the timer must neither fire nor leave an error nobody listens to.
    reply.raw.once("close", () => clearTimeout(timer));
    out.on("error", () => {});
    arm();
    return (payload as Readable).pipe(out);
  });
}
