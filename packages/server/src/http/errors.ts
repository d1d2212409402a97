import { BerthError, InternalError, InvalidRequestError, PayloadTooLargeError } from "@berth/core";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { PATTERN_MEANINGS } from "./schemas.js";

/** The wire code for framework errors that carry only an HTTP status. */
const CODE_BY_STATUS: Record<number, string> = {
  400: "invalid_request",
  404: "not_found",
  405: "method_not_allowed",
  406: "not_acceptable",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

/** `body/resources/cpus` (Ajv's instancePath plus missingProperty) as `resources.cpus`. */
function fieldOf(e: FastifyError): string | undefined {
  const v = e.validation?.[0];
  if (!v) return undefined;
  const missing = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
  const parts = v.instancePath.split("/").filter(Boolean);
  if (missing.missingProperty) parts.push(missing.missingProperty);
  if (missing.additionalProperty) parts.push(missing.additionalProperty);
  return parts.join(".") || undefined;
}

/** Turns any error into a BerthError: the one place that decides what a client sees. */
export function toBerthError(err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as FastifyError;
  if (e.validation) {
    const field = fieldOf(e);
    const v = e.validation[0];
    const params = (v?.params ?? {}) as {
      additionalProperty?: string;
      allowedValues?: unknown[];
      pattern?: string;
    };
    let what = v?.message ?? "is invalid";
    if (params.additionalProperty) what = "is not a known field";
    else if (params.pattern && PATTERN_MEANINGS[params.pattern])
      what = PATTERN_MEANINGS[params.pattern] as string;
    else if (params.allowedValues) what = `must be one of ${params.allowedValues.join(", ")}`;
    const where = e.validationContext === "body" ? "" : `${e.validationContext} `;
    return new InvalidRequestError(`${where}${field ?? e.validationContext ?? "request"} ${what}`.trim(), {
      field: field ?? e.validationContext,
    });
  }
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
    return new BerthError(CODE_BY_STATUS[status] ?? "invalid_request", status, e.message);
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
      .send(
        new BerthError("not_found", 404, `no such endpoint: ${req.method} ${req.url.split("?")[0]}`).toBody(),
      );
  });
}

/**
 * Errors the router raises before any handler (a malformed URL, an overlong path segment),
 * answered in the contract's shape too.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const be =
    err.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? new BerthError("uri_too_long", 414, "a path segment is too long (at most 100 characters)")
      : err.code === "FST_ERR_BAD_URL"
        ? new InvalidRequestError("the URL is not valid (bad percent-encoding?)")
        : toBerthError(err);
  void reply.status(be.status).send(be.toBody());
}
