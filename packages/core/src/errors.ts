/**
 * The one error hierarchy of Berth and its closed registry of codes. Every error that reaches a
 * client carries a stable snake_case `code` from ERROR_STATUS and the HTTP status the registry
 * gives it; the server turns it into the contract's error body in one place and the SDK turns
 * that body back into the same classes.
 */

/**
 * Every code that goes on the wire, with its HTTP status. A new code is added here (and to the
 * table in docs/contract.md); the compiler then refuses a code invented at a call site.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  invalid_signature: 401,
  budget_exceeded: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  request_timeout: 408,
  conflict: 409,
  invalid_state: 409,
  in_use: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  limit_exceeded: 429,
  internal_error: 500,
  sandbox_error: 500,
  not_supported: 501,
  root_unavailable: 501,
  bad_gateway: 502,
  model_unavailable: 503,
  replica_unavailable: 503,
  timeout: 504,
  disk_full: 507,
} as const satisfies Record<string, number>;

/** A code the server may put in an error body. */
export type WireErrorCode = keyof typeof ERROR_STATUS;

/**
 * Codes only a client makes, never the server: `connection_failed` (status 0: nothing answered)
 * and `http_error` (an answer that is not Berth's error body, or a code this client does not know;
 * its status is the one received).
 */
export type ClientErrorCode = "connection_failed" | "http_error";

/** Every code a BerthError can carry. */
export type ErrorCode = WireErrorCode | ClientErrorCode;

/** Every wire code, in the registry's order (for schemas and docs). */
export const WIRE_ERROR_CODES = Object.keys(ERROR_STATUS) as WireErrorCode[];

/** True when `code` is in the registry. */
export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_STATUS, code);
}

/** What an error may carry besides its message (field names, ids, errno). */
export type ErrorDetails = Record<string, unknown>;

/** The contract's error body: `{error: {code, message, details}}`. */
export interface ErrorBodyShape {
  error: { code: ErrorCode; message: string; details?: ErrorDetails };
}

/** Base class of every error Berth reports; `status` comes from the registry. */
export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails | undefined;

  constructor(code: WireErrorCode | "connection_failed", message: string, details?: ErrorDetails);
  constructor(code: "http_error", message: string, details: ErrorDetails | undefined, status: number);
  constructor(code: ErrorCode, message: string, details?: ErrorDetails, status?: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status =
      code === "http_error" ? (status ?? 500) : code === "connection_failed" ? 0 : ERROR_STATUS[code];
    this.details = details;
  }

  /** The contract's wire shape: `{error: {code, message, details}}`. */
  toBody(): ErrorBodyShape {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}

/** 400: the request is malformed; `details.field` names what to fix. */
export class InvalidRequestError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("invalid_request", message, details);
  }
}

/** 401: no or unknown API key. */
export class UnauthorizedError extends BerthError {
  constructor(message = "missing or invalid API key: send 'Authorization: Bearer <key>'") {
    super("unauthorized", message);
  }
}

/** 403: the key is valid but may not do this (e.g. admin-only endpoints). */
export class ForbiddenError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("forbidden", message, details);
  }
}

/** 404: unknown id, or an id that belongs to another tenant. */
export class NotFoundError extends BerthError {
  constructor(what: string, id: string, message = `${what} '${id}' not found`) {
    super("not_found", message, { kind: what, id });
  }
}

/**
 * 409: the resource is in the wrong state for this operation. `invalid_state`: a sandbox's state
 * machine does not allow it (details name the state and the action); `in_use`: live agent
 * sessions use the sandbox (details name them).
 */
export class ConflictError extends BerthError {
  constructor(
    message: string,
    details?: ErrorDetails,
    code: "conflict" | "invalid_state" | "in_use" = "conflict",
  ) {
    super(code, message, details);
  }
}

/** 413: a body or value is larger than allowed. */
export class PayloadTooLargeError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("payload_too_large", message, details);
  }
}

/** 408: the client did not send its request (its body) in the time allowed. */
export class RequestTimeoutError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("request_timeout", message, details);
  }
}

/** 429: a quota or server limit is reached. */
export class LimitExceededError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("limit_exceeded", message, details);
  }
}

/** 402: a session's or tenant's model budget is spent. */
export class BudgetExceededError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("budget_exceeded", message, details);
  }
}

/** 504: an operation took longer than allowed. */
export class TimeoutError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("timeout", message, details);
  }
}

/** 500: the sandbox runtime failed; the message is safe to show (no host paths). */
export class SandboxError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("sandbox_error", message, details);
  }
}

/** 502: a sandbox's port did not answer (nothing listens there, or the connection broke). */
export class BadGatewayError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("bad_gateway", message, details);
  }
}

/** 501: the running driver or template cannot do this. */
export class NotSupportedError extends BerthError {
  constructor(message: string, details?: ErrorDetails) {
    super("not_supported", message, details);
  }
}

/** 500: anything unexpected; never carries internals to the client. */
export class InternalError extends BerthError {
  constructor(message = "internal server error") {
    super("internal_error", message);
  }
}

type ErrorClass = new (message: string, details?: ErrorDetails) => BerthError;

/** The class each wire code comes back as in a client; codes without one are plain BerthErrors. */
const CLASS_BY_CODE: Partial<Record<WireErrorCode, ErrorClass>> = {
  invalid_request: InvalidRequestError,
  forbidden: ForbiddenError,
  conflict: ConflictError,
  payload_too_large: PayloadTooLargeError,
  request_timeout: RequestTimeoutError,
  limit_exceeded: LimitExceededError,
  budget_exceeded: BudgetExceededError,
  timeout: TimeoutError,
  sandbox_error: SandboxError,
  bad_gateway: BadGatewayError,
  not_supported: NotSupportedError,
};

/**
 * Rebuilds a typed error from a wire body (used by the SDK). A code this build does not know (a
 * newer server) becomes `http_error` with the received status, keeping the code in `details.code`.
 */
export function errorFromBody(
  status: number,
  body: { error?: { code?: string; message?: string; details?: ErrorDetails } },
): BerthError {
  const code = body.error?.code ?? "internal_error";
  const message = body.error?.message ?? `HTTP ${status}`;
  const details = body.error?.details;
  if (!isWireErrorCode(code)) return new BerthError("http_error", message, { ...details, code }, status);
  if (code === "not_found")
    return new NotFoundError(String(details?.kind ?? "resource"), String(details?.id ?? ""), message);
  if (code === "unauthorized") return new UnauthorizedError(message);
  if (code === "internal_error") return new InternalError(message);
  if (code === "invalid_state" || code === "in_use") return new ConflictError(message, details, code);
  const Ctor = CLASS_BY_CODE[code];
  return Ctor ? new Ctor(message, details) : new BerthError(code, message, details);
}
