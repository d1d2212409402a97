import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { toBerthError } from "../http/errors.js";
import { connectCodeName, toConnectError } from "./envd/rpc-errors.js";

/**
 * Answers failures of the E2B routes in E2B's error shape, `{code: <HTTP status>, message}`
 * (the SDKs read `message`), plus Berth's stable snake_case code as `error_code`.
 */
export function e2bErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const e = toBerthError(err);
  if (e.status >= 500) req.log.error({ err: String(err) }, "e2b request failed");
  void reply.status(e.status).send({ code: e.status, error_code: e.code, message: e.message });
}

/** A path the E2B surface does not serve, in E2B's error shape. */
export function e2bNotFound(req: FastifyRequest, reply: FastifyReply): void {
  void reply.status(404).send({
    code: 404,
    error_code: "not_found",
    message: `${req.method} ${req.url.split("?")[0]} is not part of Berth's E2B API`,
  });
}

/**
 * The data plane's error handler: a Connect call refused before its handler ran (no token, a
 * paused sandbox, root) answers in Connect's error shape so the SDKs show the message.
 */
export function envdErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (!req.routeOptions.url?.endsWith("/:service/:method")) {
    e2bErrorHandler(err, req, reply);
    return;
  }
  const e = toBerthError(err);
  const error = { code: connectCodeName(toConnectError(e).code), message: e.message };
  if (!String(req.headers["content-type"]).startsWith("application/connect+")) {
    void reply.status(e.status).send(error);
    return;
  }
  // A streaming call reports its error in the end-of-stream message (flag 2), with status 200.
  const json = Buffer.from(JSON.stringify({ error }));
  const head = Buffer.alloc(5);
  head.writeUInt8(2, 0);
  head.writeUInt32BE(json.length, 1);
  void reply
    .status(200)
    .type("application/connect+json")
    .send(Buffer.concat([head, json]));
}

/**
 * Failures of a signed file URL (`<server>/files?...&signature=...`) in envd's exact shape,
 * `{code, message}`: such URLs are fetched by plain HTTP clients that compare the body.
 */
export function envdFileUrlErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const e = toBerthError(err);
  if (e.status >= 500) req.log.error({ err: String(err) }, "e2b file URL request failed");
  void reply.status(e.status).send({ code: e.status, message: e.message });
}
