import {
  BerthError,
  InternalError,
  InvalidRequestError,
  PayloadTooLargeError,
  type WireErrorCode,
} from "@berth/core";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type SchemaError, validationError } from "./validation.js";

/**
 * The wire code for framework errors that carry only an HTTP status; any other 4xx answers as
 * invalid_request (400), so every status on the wire is the registry's.
 */
const CODE_BY_STATUS: Record<number, WireErrorCode> = {
  400: "invalid_request",
  404: "not_found",
  405: "method_not_allowed",
  406: "not_acceptable",
  408: "request_timeout",
  413: "payload_too_large",
  414: "uri_too_long",
  415: "unsupported_media_type",
};

/** Turns any error into a BerthError: the one place that decides what a client sees. */
export function toBerthError(err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as FastifyError;
  if (e.validation) return validationError(e.validation as SchemaError[], e.validationContext);
  if (
    e.code === "FST_ERR_CTP_INVALID_JSON_BODY" ||
    e.code === "FST_ERR_CTP_EMPTY_JSON_BODY" ||
    e instanceof SyntaxError
  )
    return new InvalidRequestError("the body is not valid JSON");
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return new PayloadTooLargeError("the request body is too large");
  const status = typeof e.statusCode === "number" ? e.statusCode : 500;
  if (status >= 400 && status < 500)
    return new BerthError(CODE_BY_STATUS[status] ?? "invalid_request", e.message);
  return new InternalError();
}

/** Installs the error and not-found handlers that answer in the contract's error shape. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const be = toBerthError(err);
    if (be.status >= 500) req.log.error({ err }, "request failed");
    else req.log.debug({ code: be.code, msg: be.message }, "request refused");
    if (reply.sent || reply.raw.headersSent) return;
    void reply.status(be.status).send(be.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .status(404)
      .send(new BerthError("not_found", `no such endpoint: ${req.method} ${req.url.split("?")[0]}`).toBody());
  });
}

/**
 * Errors the router raises before any handler (a malformed URL, an overlong path segment),
 * answered in the contract's shape too.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const be =
    err.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? new BerthError("uri_too_long", "a path segment is too long (at most 100 characters)")
      : err.code === "FST_ERR_BAD_URL"
        ? new InvalidRequestError("the URL is not valid (bad percent-encoding?)")
        : toBerthError(err);
  void reply.status(be.status).send(be.toBody());
}
