import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { PayloadTooLargeError, SETTINGS } from "@berth/core";
import type { FastifyRequest } from "fastify";

/**
 * The request body as a stream, refused early when Content-Length is over `max` and cut off with
 * 413 when a chunked body grows past it (the supervisor's atomic write then leaves nothing).
 */
export function limitedBody(req: FastifyRequest, max: number): Readable {
  const declared = Number(req.headers["content-length"] ?? 0);
  const tooLarge = () =>
    new PayloadTooLargeError(`the upload is larger than ${max} bytes (${SETTINGS.maxUploadBytes.env})`, {
      max,
    });
  if (declared > max) throw tooLarge();
  const body = req.body as Readable | undefined;
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(tooLarge());
      else cb(null, chunk);
    },
  });
  if (!body) {
    counter.end();
    return counter;
  }
  body.on("error", (e) => counter.destroy(e));
  return body.pipe(counter);
}
