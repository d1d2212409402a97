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
 * the request is answered 408 `request_timeout` and its connection closed. A body the handler
 * did not read before answering (a 404 or 413 first) is drained as Node would, and its
 * connection closed should it pause for longer than `ms`.
 */
export function installBodyTimeout(app: FastifyInstance, ms: number): void {
  app.addHook("preParsing", async (req, reply, payload) => {
    const h = req.headers;
    if (h["transfer-encoding"] === undefined && (h["content-length"] ?? "0") === "0") return payload;
    const idle = streamed.has(req);
    const out = new PassThrough() as PassThrough & { receivedEncodedLength: number };
    out.receivedEncodedLength = 0;
    let ended = false;
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const expire = () => {
      // Answered already: nobody waits for the rest, and the client has stopped sending it.
      if (answered) return void payload.destroy();
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
      if (idle || answered) arm();
    });
    payload.once("end", () => {
      ended = true;
      clearTimeout(timer);
    });
    payload.once("error", (e) => out.destroy(e));
    // Errors after the answer reach nobody else: they must not become uncaught exceptions.
    out.on("error", () => {});
    reply.raw.once("close", () => {
      answered = true;
      if (ended) return clearTimeout(timer);
      // The handler answered without reading it all: let the rest drain (not into `out`,
      // which nobody reads), so the client can finish sending and read the answer.
      payload.unpipe(out);
      payload.resume();
      arm();
    });
    arm();
    return (payload as Readable).pipe(out);
  });
}
