import {
  BerthError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  LimitExceededError,
  NotFoundError,
  SandboxError,
} from "@berth/core";

const MAX_MESSAGE = 300;

/** The supervisor's message, made safe to show: bounded and without control characters. */
function clean(message: string): string {
  const m = message.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE)}...` : m || "the sandbox refused the operation";
}

/**
 * Turns a supervisor failure (`r {ok:false, errno, message}`) into a Berth error. `path` is the
 * sandbox path (or, for ESRCH, the process id) the operation was about. Messages only ever name
 * sandbox paths, never host paths: berth-init cannot see the host.
 */
export function errorFromErrno(errno: string, message: string, path?: string): BerthError {
  const msg = clean(message);
  const details = { errno, ...(path !== undefined ? { path } : {}) };
  switch (errno) {
    case "ENOENT":
    case "ESRCH": {
      const kind = errno === "ENOENT" ? "path" : "process";
      return path === undefined ? new NotFoundError(kind, "", msg) : new NotFoundError(kind, path);
    }
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new ForbiddenError(msg);
    case "EISDIR":
    case "ENOTDIR":
    case "EINVAL":
    case "ENAMETOOLONG":
    case "ELOOP":
    case "EXDEV":
    case "ETXTBSY":
      return new InvalidRequestError(msg, details);
    case "EEXIST":
    case "ENOTEMPTY":
      return new ConflictError(msg, details);
    case "ENOSPC":
    case "EDQUOT":
      return new BerthError("disk_full", msg, details);
    case "EMFILE":
    case "ENFILE":
      // The sandbox holds as many files (or inotify instances) as its limits allow.
      return new LimitExceededError(msg, details);
    default:
      return new SandboxError(msg, details);
  }
}
