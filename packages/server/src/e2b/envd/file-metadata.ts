import { InvalidRequestError } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";

/** The xattr namespace envd keeps file metadata in (`user.e2b.<key>`), so metadata set in the sandbox shows too. */
const PREFIX = "user.e2b.";
/** The upload headers that carry metadata (`X-Metadata-<key>: <value>`), lowercased as Node gives them. */
const HEADER_PREFIX = "x-metadata-";
/** envd's rules: a key is an HTTP token, a value printable US-ASCII. */
const KEY = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,200}$/;
const VALUE = /^[\x20-\x7e]{0,4096}$/;
/** Most metadata entries one upload may set. */
const MAX_KEYS = 64;

// berth-init has no xattr operation, so a short Python program runs in the sandbox as the sandbox
// user: it reads or sets `user.e2b.*` xattrs and prints JSON. argv carries the paths and values.
const READ = `
import json, os, sys
out = {}
for p in sys.argv[1:]:
    m = {}
    try:
        for n in os.listxattr(p, follow_symlinks=False):
            if n.startswith("${PREFIX}"):
                m[n[${PREFIX.length}:]] = os.getxattr(p, n, follow_symlinks=False).decode("latin-1")
    except OSError:
        pass
    out[p] = m
print(json.dumps(out))
`;
const WRITE = `
import json, os, sys
p, meta = sys.argv[1], json.loads(sys.argv[2])
for k, v in meta.items():
    os.setxattr(p, "${PREFIX}" + k, v.encode("latin-1"))
`;

/** File metadata by path (a path without any is an empty object). */
export type MetadataByPath = Map<string, Record<string, string>>;

/** The metadata of an upload's `X-Metadata-*` headers, validated; undefined when there is none. */
export function metadataFromHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    if (!name.startsWith(HEADER_PREFIX)) continue;
    const key = name.slice(HEADER_PREFIX.length);
    const value = Array.isArray(raw) ? raw.join(", ") : (raw ?? "");
    if (!KEY.test(key))
      throw new InvalidRequestError(`metadata key '${key}' must be 1-200 HTTP token characters`, {
        field: name,
      });
    if (!VALUE.test(value))
      throw new InvalidRequestError(
        `metadata value of '${key}' must be at most 4096 printable ASCII characters`,
        {
          field: name,
        },
      );
    out[key] = value;
  }
  const n = Object.keys(out).length;
  if (n > MAX_KEYS) throw new InvalidRequestError(`at most ${MAX_KEYS} metadata headers are accepted`);
  return n > 0 ? out : undefined;
}

/** Runs a Python program in the sandbox; its stdout, or an error naming its stderr. */
async function python(client: SupervisorClient, args: string[]): Promise<string> {
  const proc = await client.exec({
    cmd: ["python3", "-I", "-S", "-c", ...args],
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.on("stdout", (b: Buffer) => out.push(b));
  proc.on("stderr", (b: Buffer) => err.push(b));
  const code = await new Promise<number | null>((resolve) => {
    proc.on("exit", (s: { exitCode: number | null }) => resolve(s.exitCode));
    proc.on("error", () => resolve(null));
  });
  if (code !== 0)
    throw new Error(Buffer.concat(err).toString("utf8").trim().split("\n").pop() || "python3 failed");
  return Buffer.concat(out).toString("utf8");
}

/**
 * The `user.e2b.*` metadata of each path, read in one sandbox process. Metadata is an extra:
 * when it cannot be read (no python3 in the image) every path reads as having none.
 */
export async function readMetadata(client: SupervisorClient, paths: string[]): Promise<MetadataByPath> {
  const out: MetadataByPath = new Map();
  if (paths.length === 0) return out;
  try {
    const parsed = JSON.parse(await python(client, [READ, ...paths])) as Record<
      string,
      Record<string, string>
    >;
    for (const p of paths) out.set(p, parsed[p] ?? {});
  } catch {
    for (const p of paths) out.set(p, {});
  }
  return out;
}

/**
 * Sets metadata on a file just written. berth-init writes a new inode for every write, so a
 * rewrite without metadata has none (stale metadata cannot survive an overwrite).
 */
export async function writeMetadata(
  client: SupervisorClient,
  path: string,
  metadata: Record<string, string>,
): Promise<void> {
  await python(client, [WRITE, path, JSON.stringify(metadata)]).catch((e: Error) => {
    throw new InvalidRequestError(`the file was written but its metadata could not be set: ${e.message}`);
  });
}
