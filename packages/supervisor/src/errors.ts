import {
  BerthError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  LimitExceededError,
  NotFoundError,
  PayloadTooLargeError,
  SandboxError,
} from "@berth/core";

const MAX_MESSAGE = 300;

/**
 * The step at which berth-init failed to start a process (`exec` and `spawn` replies carry it as
 * `phase`): `setup` (pipes, fork), `chdir` (the cwd), `landlock` (confining writes: the kernel has
 * no Landlock), `exec` (the program is missing or may not be run).
 */
export const LAUNCH_PHASES = ["setup", "chdir", "landlock", "exec"] as const;
/** One of LAUNCH_PHASES. */
export type LaunchPhase = (typeof LAUNCH_PHASES)[number];

/** What berth-init said about a process it could not start. */
export interface LaunchFailure {
  phase: LaunchPhase;
  /** The errno name (`ENOENT`). */
  errno: string;
  /** strerror of it, safe to show (`No such file or directory`). */
  reason: string;
}

/**
 * Launch failures by the error they became. Kept beside the error, not in its `details`, so what
 * a client sees of it does not change.
 */
const launchFailures = new WeakMap<BerthError, LaunchFailure>();

/** The launch failure behind a supervisor error, or undefined for any other error. */
export function launchFailureOf(err: unknown): LaunchFailure | undefined {
  return err instanceof BerthError ? launchFailures.get(err) : undefined;
}

/** True when `v` is one of LAUNCH_PHASES (berth-init is untrusted: its reply is checked). */
export function isLaunchPhase(v: unknown): v is LaunchPhase {
  return LAUNCH_PHASES.some((p) => p === v);
}

/** The supervisor's message, made safe to show: bounded and without control characters. */
function clean(message: string): string {
  const m = message.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE)}...` : m || "the sandbox refused the operation";
}

/**
 * Turns a supervisor failure (`r {ok:false, errno, message, phase?, reason?}`) into a Berth
 * error. `path` is the sandbox path (or, for ESRCH, the process id) the operation was about; the
 * phase and reason of a process that could not start are read back with launchFailureOf.
 * Messages only ever name sandbox paths, never host paths: berth-init cannot see the host.
 */
export function errorFromErrno(
  errno: string,
  message: string,
  path?: string,
  launch?: { phase: LaunchPhase; reason: string },
): BerthError {
  const err = errorOf(errno, clean(message), path);
  if (launch) launchFailures.set(err, { phase: launch.phase, errno, reason: clean(launch.reason) });
  return err;
}

function errorOf(errno: string, msg: string, path: string | undefined): BerthError {
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
    case "EPIPE":
      // A process's stdin that is not open: never kept, closed, or the process exited.
      return new ConflictError(msg, { errno });
    case "EFBIG":
      return new PayloadTooLargeError(msg, { errno });
    case "ENOSPC":
    case "EDQUOT":
      return new BerthError("disk_full", msg, details);
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
      // The sandbox holds as many files (or inotify instances) as its limits allow.
      return new LimitExceededError(msg, details);
    default:
      return new SandboxError(msg, details);
  }
}
