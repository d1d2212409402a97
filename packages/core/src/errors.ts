/**
 * The one error hierarchy of Berth. Every error that reaches a client carries a stable
 * snake_case `code` and an HTTP status; the server turns it into the contract's error body
 * in one place and the SDK turns that body back into the same classes.
 */
export class BerthError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, status: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }

  /** The contract's wire shape: `{error: {code, message, details}}`. */
  toBody(): { error: { code: string; message: string; details?: Record<string, unknown> } } {
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
  constructor(message: string, details?: Record<string, unknown>) {
    super("invalid_request", 400, message, details);
  }
}

/** 401: no or unknown API key. */
export class UnauthorizedError extends BerthError {
  constructor(message = "missing or invalid API key: send 'Authorization: Bearer <key>'") {
    super("unauthorized", 401, message);
  }
}

/** 403: the key is valid but may not do this (e.g. admin-only endpoints). */
export class ForbiddenError extends BerthError {
  constructor(message: string) {
    super("forbidden", 403, message);
  }
}

/** 404: unknown id, or an id that belongs to another tenant. */
export class NotFoundError extends BerthError {
  constructor(what: string, id: string) {
    super("not_found", 404, `${what} '${id}' not found`, { kind: what, id });
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
    details?: Record<string, unknown>,
    code: "conflict" | "invalid_state" | "in_use" = "conflict",
  ) {
    super(code, 409, message, details);
  }
}

/** 413: a body or value is larger than allowed. */
export class PayloadTooLargeError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("payload_too_large", 413, message, details);
  }
}

/** 408: the client did not send its request (its body) in the time allowed. */
export class RequestTimeoutError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("request_timeout", 408, message, details);
  }
}

/** 429: a quota or server limit is reached. */
export class LimitExceededError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("limit_exceeded", 429, message, details);
  }
}

/** 402: a session's or tenant's model budget is spent. */
export class BudgetExceededError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("budget_exceeded", 402, message, details);
  }
}

/** 504/408-like: an operation took longer than allowed. */
export class TimeoutError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("timeout", 504, message, details);
  }
}

/** 500: the sandbox runtime failed; the message is safe to show (no host paths). */
export class SandboxError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("sandbox_error", 500, message, details);
  }
}

/** 502: a sandbox's port did not answer (nothing listens there, or the connection broke). */
export class BadGatewayError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("bad_gateway", 502, message, details);
  }
}

/** 501: the running driver or template cannot do this. */
export class NotSupportedError extends BerthError {
  constructor(message: string) {
    super("not_supported", 501, message);
  }
}

/** 500: anything unexpected; never carries internals to the client. */
export class InternalError extends BerthError {
  constructor(message = "internal server error") {
    super("internal_error", 500, message);
  }
}

const byCode: Record<string, new (message: string, details?: Record<string, unknown>) => BerthError> = {
  invalid_request: InvalidRequestError,
  conflict: ConflictError,
  payload_too_large: PayloadTooLargeError,
  request_timeout: RequestTimeoutError,
  limit_exceeded: LimitExceededError,
  budget_exceeded: BudgetExceededError,
  timeout: TimeoutError,
  sandbox_error: SandboxError,
  bad_gateway: BadGatewayError,
};

/** Rebuilds a typed error from a wire body (used by the SDK). */
export function errorFromBody(
  status: number,
  body: { error?: { code?: string; message?: string; details?: Record<string, unknown> } },
): BerthError {
  const code = body.error?.code ?? "internal_error";
  const message = body.error?.message ?? `HTTP ${status}`;
  const details = body.error?.details;
  if (code === "not_found") {
    const e = new NotFoundError(String(details?.kind ?? "resource"), String(details?.id ?? ""));
    Object.defineProperty(e, "message", { value: message });
    return e;
  }
  if (code === "unauthorized") return new UnauthorizedError(message);
  if (code === "forbidden") return new ForbiddenError(message);
  if (code === "not_supported") return new NotSupportedError(message);
  if (code === "invalid_state" || code === "in_use") return new ConflictError(message, details, code);
  const Ctor = byCode[code];
  if (Ctor) return new Ctor(message, details);
  return new BerthError(code, status, message, details);
}
