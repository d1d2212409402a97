import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger, SessionRecord } from "@berth/core";
import type { ProcessStream, SupervisorClient } from "@berth/supervisor";
import { sessionHomeOf } from "./agent-env.js";

/** What a finished session left: its working directory as tar, and its conversation's transcript. */
export interface KeptOutputs {
  workspace: Buffer | null;
  transcript: Buffer | null;
}

/** The home (`~/.claude` lives there) of a session's agent in its sandbox. */
export function agentHomeOf(s: Pick<SessionRecord, "id" | "pattern">): string {
  return s.pattern === "shared" ? sessionHomeOf(s.id) : "/home/user";
}

/** Where `claude` keeps a conversation that runs in `cwd` (`~/.claude/projects/<cwd slug>/<id>.jsonl`). */
export function transcriptPath(home: string, cwd: string, agentSessionId: string): string {
  return `${home}/.claude/projects/${cwd.replace(/[^A-Za-z0-9]/g, "-")}/${agentSessionId}.jsonl`;
}

/** Runs `cmd` in the sandbox; answers its stdout (at most `maxBytes`, else null) once it exits 0 or 1. */
export async function collect(
  client: SupervisorClient,
  cmd: string[],
  env: Record<string, string>,
  maxBytes: number,
): Promise<Buffer | null> {
  const p = await client.exec({ cmd, env });
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  p.on("stdout", (b: Buffer) => {
    size += b.length;
    if (size > maxBytes) {
      over = true;
      p.close();
    } else chunks.push(b);
  });
  const status = await exited(p);
  // tar exits 1 when files changed while it read them; the archive is still whole.
  if (over || (status.exitCode !== 0 && status.exitCode !== 1)) return null;
  return Buffer.concat(chunks);
}

/** Feeds `input` to `cmd` in the sandbox; throws with its stderr unless it exits 0. */
export async function feed(
  client: SupervisorClient,
  cmd: string[],
  env: Record<string, string>,
  input: Buffer,
): Promise<void> {
  const p = await client.exec({ cmd, env, stdin: true });
  let stderr = "";
  p.on("stderr", (b: Buffer) => {
    stderr = (stderr + b.toString("utf8")).slice(-2048);
  });
  const done = exited(p);
  if (!p.writeStdin(input)) await p.drained().catch(() => {});
  p.endStdin();
  const s = await done;
  if (s.exitCode !== 0) throw new Error(`${cmd[0]} failed: ${stderr.trim() || `exit ${s.exitCode}`}`);
}

function exited(p: ProcessStream): Promise<{ exitCode: number | null }> {
  return new Promise((resolve, reject) => {
    p.on("exit", resolve);
    p.on("error", reject);
  });
}

/**
 * What sessions leave behind, kept on the server's disk for `keepSeconds` after they end (also
 * when their sandbox is gone): `<dataDir>/session-outputs/<sessionId>/{workspace.tar,transcript.jsonl}`.
 * The workspace is `GET /v1/sessions/:id/workspace`; both seed a session that resumes or forks it.
 */
export class SessionOutputs {
  private readonly root: string;

  constructor(private readonly d: { dataDir: string; keepSeconds: number; maxBytes: number; log: Logger }) {
    this.root = join(d.dataDir, "session-outputs");
  }

  /** Takes the session's working directory and transcript from its (still running) sandbox. */
  async take(s: SessionRecord, client: SupervisorClient, env: Record<string, string>): Promise<KeptOutputs> {
    const workspace = await collect(
      client,
      ["tar", "-c", "-f", "-", "-C", s.options.cwd, "."],
      env,
      this.d.maxBytes,
    ).catch(() => null);
    const transcript = s.agentSessionId
      ? await collect(
          client,
          ["cat", transcriptPath(agentHomeOf(s), s.options.cwd, s.agentSessionId)],
          env,
          this.d.maxBytes,
        ).catch(() => null)
      : null;
    return { workspace, transcript };
  }

  /** Keeps what a session left (nothing is written for what it did not leave). */
  async keep(id: string, o: KeptOutputs): Promise<void> {
    const dir = join(this.root, id);
    await mkdir(dir, { recursive: true });
    if (o.workspace) await writeFile(join(dir, "workspace.tar"), o.workspace);
    if (o.transcript) await writeFile(join(dir, "transcript.jsonl"), o.transcript);
  }

  /** The kept workspace tar of a session, or null (none, or older than the time it is kept). */
  async workspace(id: string): Promise<{ size: number; stream: NodeJS.ReadableStream } | null> {
    const file = join(this.root, id, "workspace.tar");
    const st = await stat(file).catch(() => null);
    if (!st || this.expired(st.mtimeMs)) return null;
    return { size: st.size, stream: createReadStream(file) };
  }

  /** The kept workspace and transcript of a session, as buffers (for a resume or a fork). */
  async read(id: string): Promise<KeptOutputs> {
    const get = async (name: string) => {
      const file = join(this.root, id, name);
      const st = await stat(file).catch(() => null);
      if (!st || this.expired(st.mtimeMs)) return null;
      return readFile(file);
    };
    return { workspace: await get("workspace.tar"), transcript: await get("transcript.jsonl") };
  }

  /** Removes what is older than the time it is kept. */
  async sweep(): Promise<void> {
    const ids = await readdir(this.root).catch(() => [] as string[]);
    for (const id of ids) {
      const st = await stat(join(this.root, id)).catch(() => null);
      if (st && this.expired(st.mtimeMs))
        await rm(join(this.root, id), { recursive: true, force: true }).catch((err: Error) =>
          this.d.log.warn({ sessionId: id, err: err.message }, "could not remove a session's kept outputs"),
        );
    }
  }

  private expired(mtimeMs: number): boolean {
    return mtimeMs + this.d.keepSeconds * 1000 < Date.now();
  }
}
