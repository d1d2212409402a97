import { type Duplex, Readable } from "node:stream";
import { type BerthError, InvalidRequestError, SandboxError } from "@berth/core";
import { type Answer, FrameConnection, invalidAnswer } from "./connection.js";
import { dialPort } from "./dial.js";
import { MAX_FRAME_BYTES } from "./frames.js";
import { ProcessStream } from "./process-stream.js";
import { type FileEntry, type ProcessInfo, toFileEntry, toPid, toProcessInfo } from "./types.js";
import { WatchStream } from "./watch-stream.js";

/** Who an operation runs as in the sandbox: the sandbox user (uid 1000) or root (root sandboxes only). */
export type SandboxUserName = "user" | "root";

/** Bytes per uploaded file frame. */
const UPLOAD_CHUNK = 256 * 1024;
/** How long connecting and the first reply of an operation may take by default. */
export const REPLY_TIMEOUT_MS = 30_000;

/** What a write to a kept stdin did: bytes written, and whether stdin is now closed. */
export interface StdinResult {
  written: number;
  closed: boolean;
}

/** A command to run in the sandbox; `env` is the whole environment. */
export interface ExecOptions {
  cmd: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin?: boolean;
  pty?: { cols: number; rows: number };
  /** Confines the process and all it starts (Landlock): it may change files only beneath these paths. */
  writable?: string[];
}

/**
 * Talks to berth-init (PROTOCOL.md) over streams from `connect`, one connection per operation.
 * berth-init is untrusted: every frame is bounded by `maxFrameBytes` and every answer validated.
 * Failures are Berth errors (see errorFromErrno).
 */
export class SupervisorClient {
  private readonly maxFrameBytes: number;
  private readonly replyTimeoutMs: number;
  private readonly user: SandboxUserName | undefined;

  constructor(
    private readonly connect: () => Promise<Duplex>,
    private readonly opts: { maxFrameBytes?: number; replyTimeoutMs?: number; user?: SandboxUserName } = {},
  ) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
    this.user = opts.user;
  }

  /**
   * The same supervisor, with every operation run as `user` ("root" works only in a sandbox
   * created with root: berth-init answers EPERM, `permission_denied`, elsewhere).
   */
  as(user: SandboxUserName): SupervisorClient {
    return user === (this.user ?? "user") ? this : new SupervisorClient(this.connect, { ...this.opts, user });
  }

  /** Checks that the supervisor answers; returns its protocol version. */
  async ping(): Promise<{ version: string }> {
    const a = await this.call({ op: "ping" });
    if (typeof a.version !== "string") throw invalidAnswer();
    return { version: a.version };
  }

  /** Starts a foreground process; closing the stream kills its process group. */
  async exec(o: ExecOptions): Promise<ProcessStream> {
    const { conn, answer } = await this.open({
      op: "exec",
      cmd: o.cmd,
      cwd: o.cwd,
      env: o.env,
      stdin: o.stdin ?? false,
      pty: o.pty,
      ...(o.writable ? { writable: o.writable } : {}),
    });
    return new ProcessStream(conn, toPid(answer.pid));
  }

  /**
   * Starts a background process that outlives the connection (output goes to its log). With
   * `stdin` its stdin stays open for writeStdin from any later connection; else it is /dev/null.
   */
  async spawn(o: {
    cmd: string[];
    cwd?: string;
    env: Record<string, string>;
    stdin?: boolean;
  }): Promise<{ pid: number }> {
    const a = await this.call({
      op: "spawn",
      cmd: o.cmd,
      cwd: o.cwd,
      env: o.env,
      ...(o.stdin ? { stdin: true } : {}),
    });
    return { pid: toPid(a.pid) };
  }

  /**
   * Writes `data` to the kept stdin of a spawned process, then with `close` closes it. Resolves
   * once every byte is in the process's stdin pipe (it waits while the process does not read).
   * NotFoundError for an unknown pid; ConflictError (errno EPIPE) when the process was started
   * without stdin, has exited or closed its stdin, or its stdin was closed before.
   */
  async writeStdin(pid: number, data: Buffer, o: { close: boolean }): Promise<StdinResult> {
    const { conn } = await this.open({ op: "stdin", pid, close: o.close }, String(pid));
    try {
      try {
        for (let i = 0; i < data.length && !conn.hasPending; i += UPLOAD_CHUNK) {
          if (!conn.send("i", data.subarray(i, i + UPLOAD_CHUNK))) await conn.drained();
        }
        if (!conn.hasPending) conn.send("e");
      } catch (e) {
        // The connection ended while sending: an error answer that came first says why.
        if (!conn.hasPending) throw e;
      }
      const a = await conn.reply(String(pid));
      if (!Number.isSafeInteger(a.written) || (a.written as number) < 0 || typeof a.closed !== "boolean")
        throw invalidAnswer();
      return { written: a.written as number, closed: a.closed };
    } finally {
      conn.close();
    }
  }

  /** Every process started with spawn, running or exited. */
  async processes(): Promise<ProcessInfo[]> {
    return this.batches({ op: "procs" }, "processes", toProcessInfo);
  }

  /** One spawned process; NotFoundError (kind "process") when unknown. */
  async process(pid: number): Promise<ProcessInfo> {
    const a = await this.call({ op: "proc", pid }, String(pid));
    return toProcessInfo(a.process);
  }

  /** A spawned process's output so far (and, with follow, until it exits), then 'exit'. */
  async logs(pid: number, o: { follow: boolean }): Promise<ProcessStream> {
    const { conn } = await this.open({ op: "logs", pid, follow: o.follow }, String(pid));
    return new ProcessStream(conn, pid);
  }

  /** Signals the process group of a spawned process. */
  async signal(pid: number, signal: number): Promise<void> {
    await this.call({ op: "signal", pid, signal }, String(pid));
  }

  /** The entry at `path` itself (a symlink is not followed). */
  async stat(path: string): Promise<FileEntry> {
    const a = await this.call({ op: "stat", path }, path);
    return toFileEntry(a.entry);
  }

  /** The entries of a directory, sorted by name. */
  async list(path: string): Promise<FileEntry[]> {
    return this.batches({ op: "list", path }, "entries", toFileEntry, path);
  }

  /** A regular file's size and its bytes; the stream errors when the connection breaks. */
  async read(path: string): Promise<{ size: number; stream: Readable }> {
    const { conn, answer } = await this.open({ op: "read", path }, path);
    const size = answer.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      conn.close();
      throw invalidAnswer();
    }
    let received = 0;
    const stream = new Readable({
      read: () => conn.socket.resume(),
      destroy: (err, cb) => {
        conn.close();
        cb(err);
      },
    });
    conn.stream({
      frame: (f) => {
        if (f.type === "1" && received + f.payload.length <= size) {
          received += f.payload.length;
          if (!stream.push(f.payload)) conn.socket.pause();
        } else if (f.type === "e") {
          conn.close();
          stream.push(null);
        } else stream.destroy(invalidAnswer());
      },
      end: (err) => {
        if (err) stream.destroy(err);
      },
    });
    return { size, stream };
  }

  /**
   * Writes a file atomically (temp file + rename; missing parents are created). If `body`
   * fails or the connection breaks, nothing is left behind in the sandbox.
   */
  async write(path: string, body: Readable | Buffer, o: { mode?: number } = {}): Promise<{ size: number }> {
    // Until the loop below reads it, nothing listens to the body: one failing while the request
    // is opened would be an uncaught 'error' (a process crash). The loop reports the error.
    const ignore = () => {};
    if (!Buffer.isBuffer(body)) body.on("error", ignore);
    try {
      return await this.upload(path, body, o);
    } finally {
      if (!Buffer.isBuffer(body)) body.off("error", ignore);
    }
  }

  /** `write`'s request, then its body as frames. */
  private async upload(
    path: string,
    body: Readable | Buffer,
    o: { mode?: number },
  ): Promise<{ size: number }> {
    const { conn } = await this.open({ op: "write", path, mode: o.mode }, path);
    try {
      const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(body) ? [body] : body;
      for await (const raw of chunks) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as string);
        for (let i = 0; i < chunk.length; i += UPLOAD_CHUNK) {
          if (conn.hasPending) break; // an early reply is an error: stop and report it
          if (!conn.send("i", chunk.subarray(i, i + UPLOAD_CHUNK))) await conn.drained();
        }
        if (conn.hasPending) break;
      }
      if (!conn.hasPending) conn.send("e");
    } catch (e) {
      // The body failed, or the connection broke: an error reply explains the latter.
      if (!conn.hasPending) {
        conn.close();
        throw e;
      }
    }
    try {
      const a = await conn.reply(path);
      if (typeof a.size !== "number" || !Number.isSafeInteger(a.size) || a.size < 0) throw invalidAnswer();
      return { size: a.size };
    } finally {
      conn.close();
    }
  }

  /** Removes a file, symlink or (empty, or with recursive any) directory; never follows symlinks. */
  async remove(path: string, o: { recursive: boolean }): Promise<void> {
    await this.call({ op: "remove", path, recursive: o.recursive }, path);
  }

  /** Creates a directory and its parents; fine when it already exists as a directory. */
  async mkdir(path: string): Promise<void> {
    await this.call({ op: "mkdir", path }, path);
  }

  /** Renames `from` to `to`, creating the parents of `to`. */
  async move(from: string, to: string): Promise<void> {
    await this.call({ op: "move", from, to }, from);
  }

  /**
   * A TCP connection to `port` inside the sandbox (its loopback), as a raw byte stream. Fails
   * with errno ECONNREFUSED (a SandboxError with `details.errno`) when nothing listens there.
   */
  async dial(port: number): Promise<Duplex> {
    return dialPort(await this.connect(), port);
  }

  /** File system events under `path` until the stream is closed. */
  async watch(path: string, o: { recursive: boolean }): Promise<WatchStream> {
    const { conn } = await this.open({ op: "watch", path, recursive: o.recursive }, path);
    return new WatchStream(conn);
  }

  /** Opens a connection, sends the request and waits for the first reply. */
  private async open(
    request: Record<string, unknown>,
    path?: string,
  ): Promise<{ conn: FrameConnection; answer: Answer }> {
    const body = Buffer.from(JSON.stringify(this.user === "root" ? { ...request, user: "root" } : request));
    if (body.length > MAX_FRAME_BYTES) throw new InvalidRequestError("the request is too large");
    // Connecting and the first reply are bounded: a supervisor that never answers (a hung
    // port-forward, a sandbox too loaded to schedule it) must not hold its caller forever.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SandboxError(
              `the sandbox's supervisor did not answer in ${Math.round(this.replyTimeoutMs / 1000)} s`,
            ),
          ),
        this.replyTimeoutMs,
      );
    });
    const connecting = this.connect();
    let conn: FrameConnection | undefined;
    try {
      conn = new FrameConnection(await Promise.race([connecting, timeout]), this.maxFrameBytes);
      conn.send("q", body);
      return { conn, answer: await Promise.race([conn.reply(path), timeout]) };
    } catch (e) {
      if (conn) conn.close();
      // A connection that comes after the deadline is closed when it comes.
      else void connecting.then((socket) => socket.destroy()).catch(() => {});
      throw e as BerthError;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A one-reply operation. */
  private async call(request: Record<string, unknown>, path?: string): Promise<Answer> {
    const { conn, answer } = await this.open(request, path);
    conn.close();
    return answer;
  }

  /** An operation whose items come in one or more `r` frames (`more: true` until the last). */
  private async batches<T>(
    request: Record<string, unknown>,
    key: string,
    item: (v: unknown) => T,
    path?: string,
  ): Promise<T[]> {
    const { conn, answer } = await this.open(request, path);
    try {
      const out: T[] = [];
      for (let a = answer; ; a = await conn.reply(path)) {
        const items = a[key];
        if (!Array.isArray(items)) throw invalidAnswer();
        for (const v of items) out.push(item(v));
        if (a.more !== true) return out;
      }
    } finally {
      conn.close();
    }
  }
}
