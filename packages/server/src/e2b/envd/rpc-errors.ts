import { BerthError } from "@berth/core";
import { Code, ConnectError } from "@connectrpc/connect";
import { toBerthError } from "../../http/errors.js";

/** Connect codes for Berth's error codes (the SDKs turn these into their own error classes). */
const CODES: Record<string, Code> = {
  invalid_request: Code.InvalidArgument,
  unauthorized: Code.Unauthenticated,
  forbidden: Code.PermissionDenied,
  not_found: Code.NotFound,
  conflict: Code.FailedPrecondition,
  payload_too_large: Code.ResourceExhausted,
  limit_exceeded: Code.ResourceExhausted,
  request_timeout: Code.DeadlineExceeded,
  timeout: Code.DeadlineExceeded,
  not_supported: Code.Unimplemented,
  bad_gateway: Code.Unavailable,
};

/** Any failure as a ConnectError; a Berth error keeps its message, anything else says only "internal". */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = err instanceof BerthError ? err : toBerthError(err);
  return new ConnectError(e.message, CODES[e.code] ?? Code.Internal);
}

/** Runs a handler body, reporting its failure in Connect's terms. */
export async function rpc<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw toConnectError(err);
  }
}

/** Connect's wire name of a code (`Code.PermissionDenied` is `permission_denied`). */
export function connectCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
