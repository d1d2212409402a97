import { posix } from "node:path";
import { InvalidRequestError, type SessionRecord } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { agentHomeOf, feed, type KeptOutputs, transcriptPath } from "./session-outputs.js";

/** A file placed in the session's working directory before its first turn. */
export interface InputFile {
  /** Relative to the working directory (no `..`). */
  path: string;
  content: string;
  encoding?: "utf8" | "base64";
}

/** What a new session's sandbox gets before the agent starts. */
export interface Seed {
  files?: InputFile[];
  /** A tar (base64) unpacked into the working directory. */
  archive?: string;
  /** A resumed or forked session's kept workspace and transcript. */
  kept?: KeptOutputs;
}

/** The absolute path of an input file in `cwd`; 400 for one that leaves it. */
export function inputPath(cwd: string, path: string, field: string): string {
  const normal = posix.normalize(path);
  if (path.startsWith("/") || normal === ".." || normal.startsWith("../") || normal === ".")
    throw new InvalidRequestError(
      `${field} must be a relative path inside the working directory, got "${path}"`,
      {
        field,
      },
    );
  return posix.join(cwd, normal);
}

/**
 * Puts what a session starts with into its sandbox, as the sandbox user (the agent owns what it
 * finds): a kept workspace and the uploaded archive unpacked into the working directory, the input
 * files, and a resumed conversation's transcript where `claude` looks for it.
 */
export async function seedSandbox(
  client: SupervisorClient,
  env: Record<string, string>,
  s: SessionRecord,
  seed: Seed,
): Promise<void> {
  const cwd = s.options.cwd;
  const untar = (tar: Buffer) =>
    feed(client, ["tar", "-x", "-f", "-", "-C", cwd, "--no-same-owner", "--no-same-permissions"], env, tar);
  const put = (path: string, body: Buffer) =>
    feed(client, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path], env, body);
  if (seed.kept?.workspace) await untar(seed.kept.workspace);
  if (seed.archive) {
    try {
      await untar(Buffer.from(seed.archive, "base64"));
    } catch (err) {
      throw new InvalidRequestError(`archive could not be unpacked: ${(err as Error).message}`, {
        field: "archive",
      });
    }
  }
  for (const [i, f] of (seed.files ?? []).entries())
    await put(
      inputPath(cwd, f.path, `files[${i}].path`),
      Buffer.from(f.content, f.encoding === "base64" ? "base64" : "utf8"),
    );
  if (seed.kept?.transcript && s.agentSessionId)
    await put(transcriptPath(agentHomeOf(s), cwd, s.agentSessionId), seed.kept.transcript);
}
