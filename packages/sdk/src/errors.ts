import { BerthError } from "@berth/core";

export {
  BadGatewayError,
  BerthError,
  ConflictError,
  ERROR_STATUS,
  type ErrorCode,
  errorFromBody,
  ForbiddenError,
  InternalError,
  InvalidRequestError,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  SandboxError,
  TimeoutError,
  UnauthorizedError,
} from "@berth/core";

/** The server could not be reached at all (refused, reset, DNS); `status` is 0. */
export class ConnectionError extends BerthError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("connection_failed", message, details);
  }
}
