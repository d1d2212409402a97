// berth-init answers `stat`/`list` and `procs`/`proc` in the API's own shapes (the contract's
// FileEntry and ProcessInfo; a process's `signal` is the name, `SIGKILL`, when one killed it).
import type { FileEntry, ProcessInfo } from "@berth/core/contract";
import { invalidAnswer } from "./connection.js";

/**
 * One file system entry in the sandbox (lstat semantics: a symlink is reported as itself), in the
 * API's shape: `mode` the permission bits (0o644), `mtime` ISO-8601.
 */
export type { FileEntry, ProcessInfo };

/** How a process ended: an exit code, or the name of the signal that killed it. */
export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

const FILE_TYPES = new Set(["file", "dir", "symlink", "other"]);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const SIGNAL = /^SIG[A-Z0-9+-]{1,12}$/;

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const isIsoOrNull = (v: unknown): v is string | null => v === null || (typeof v === "string" && ISO.test(v));

/** Validates one entry of a stat/list answer. */
export function toFileEntry(v: unknown): FileEntry {
  const o = v as Record<string, unknown> | null;
  if (
    typeof o !== "object" ||
    o === null ||
    typeof o.name !== "string" ||
    typeof o.type !== "string" ||
    !FILE_TYPES.has(o.type) ||
    !isInt(o.size, 0, Number.MAX_SAFE_INTEGER) ||
    !isInt(o.mode, 0, 0o7777) ||
    typeof o.mtime !== "string" ||
    !ISO.test(o.mtime)
  )
    throw invalidAnswer();
  return { name: o.name, type: o.type as FileEntry["type"], size: o.size, mode: o.mode, mtime: o.mtime };
}

/** Validates an exit status (`x` frame). */
export function toExitStatus(v: unknown): ExitStatus {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null) throw invalidAnswer();
  const exitCode = o.exitCode ?? null;
  const signal = o.signal ?? null;
  if (exitCode !== null && !isInt(exitCode, 0, 255)) throw invalidAnswer();
  if (signal !== null && (typeof signal !== "string" || !SIGNAL.test(signal))) throw invalidAnswer();
  return { exitCode, signal };
}

/** Validates one process of a procs/proc answer. */
export function toProcessInfo(v: unknown): ProcessInfo {
  const o = v as Record<string, unknown> | null;
  if (
    typeof o !== "object" ||
    o === null ||
    !isInt(o.pid, 1, 2 ** 22) ||
    !Array.isArray(o.cmd) ||
    !o.cmd.every((a) => typeof a === "string") ||
    (o.cwd !== null && typeof o.cwd !== "string") ||
    (o.state !== "running" && o.state !== "exited") ||
    !isIsoOrNull(o.startedAt) ||
    !isIsoOrNull(o.exitedAt)
  )
    throw invalidAnswer();
  const exit = toExitStatus(o);
  return {
    pid: o.pid,
    cmd: o.cmd as string[],
    cwd: o.cwd,
    state: o.state,
    exitCode: exit.exitCode,
    signal: exit.signal,
    startedAt: o.startedAt,
    exitedAt: o.exitedAt,
  };
}

/** Validates a pid field. */
export function toPid(v: unknown): number {
  if (!isInt(v, 1, 2 ** 22)) throw invalidAnswer();
  return v;
}
