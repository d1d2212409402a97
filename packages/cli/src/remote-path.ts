/** One side of `berth files cp`: a local path or a path inside a sandbox. */
export type CopyTarget =
  | { kind: "local"; path: string }
  | { kind: "remote"; sandboxId: string; path: string };

/**
 * Reads `ID:/path` as a sandbox path and anything else as local, like `docker cp`. A local
 * path with a colon can be written `./a:b`. Remote paths must be absolute.
 */
export function parseCopyTarget(arg: string): CopyTarget {
  const m = /^([A-Za-z0-9][A-Za-z0-9_-]*):(.*)$/.exec(arg);
  if (!m) return { kind: "local", path: arg };
  const [, sandboxId, path] = m as unknown as [string, string, string];
  if (!path.startsWith("/"))
    throw new Error(`sandbox path must be absolute: '${arg}' (write ${sandboxId}:/...)`);
  if (path.includes("\0")) throw new Error("sandbox path contains a NUL byte");
  return { kind: "remote", sandboxId, path };
}

/** The last path segment ("/a/b/" -> "b"; "/" -> ""). */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** Joins a sandbox directory and a name with exactly one slash. */
export function joinRemote(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}
