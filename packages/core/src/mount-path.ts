import { InvalidRequestError } from "./errors.js";

/** Volumes may not replace these, nor sit inside the ones marked with a trailing slash. */
const RESERVED_EXACT = ["/", "/tmp", "/run", "/home", "/home/user", "/workspace"];
const RESERVED_TREES = [
  "/proc",
  "/sys",
  "/dev",
  "/usr",
  "/bin",
  "/lib",
  "/lib64",
  "/sbin",
  "/etc",
  "/.berth",
  "/run/berth",
];

/** Refuses mount paths that would hide or replace the system (or play with `.` and `..`). */
export function checkMountPath(path: string): void {
  const clean = path.replace(/\/+$/, "") || "/";
  const bad = (why: string) =>
    new InvalidRequestError(`volume mountPath '${path}' ${why}`, { field: "volumes.mountPath" });
  if (!clean.startsWith("/") || clean.split("/").some((p) => p === ".." || p === ".") || clean.includes("//"))
    throw bad("must be an absolute path without . or ..");
  if (RESERVED_EXACT.includes(clean) || RESERVED_TREES.some((r) => clean === r || clean.startsWith(`${r}/`)))
    throw bad("is a system directory; use e.g. /data or /workspace/data");
}
