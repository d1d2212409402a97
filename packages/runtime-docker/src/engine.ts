import http from "node:http";
import type { Readable } from "node:stream";
import { BerthError, ConflictError, type Logger, NotFoundError, SandboxError } from "@berth/core";

/** A non-2xx answer of the Docker Engine API, with its status and message. */
export class EngineError extends SandboxError {
  constructor(
    readonly statusCode: number,
    readonly engineMessage: string,
    what: string,
  ) {
    // The engine's message can name host paths (binds, the data root): it goes to the log only.
    super(`the docker engine refused ${what} (status ${statusCode})`);
  }
}

/** One request: method, path (with query), an optional JSON or stream body. */
interface Call {
  method: string;
  path: string;
  json?: unknown;
  body?: Readable;
  /** Content type of a stream body (default application/x-tar). */
  type?: string;
  timeoutMs?: number;
}

/**
 * The Docker Engine API over its unix socket, plain HTTP (API v1.41: Docker 20.10 and newer).
 * Answers are JSON; a non-2xx status becomes an EngineError (404 and 409 keep their meaning).
 */
export class Engine {
  constructor(
    readonly socketPath: string,
    private readonly log?: Logger,
  ) {}

  /** The JSON answer of a call (null for an empty body). */
  async json<T>(c: Call): Promise<T> {
    const res = await this.request(c);
    const text = await readAll(res);
    return (text.length > 0 ? JSON.parse(text) : null) as T;
  }

  /** A call whose answer is a stream (archives, exports); the caller consumes it. */
  async stream(c: Call): Promise<http.IncomingMessage> {
    return this.request(c);
  }

  private request(c: Call): Promise<http.IncomingMessage> {
    this.log?.debug({ method: c.method, path: c.path }, "docker api");
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      const payload = c.json === undefined ? undefined : JSON.stringify(c.json);
      if (payload !== undefined) headers["content-type"] = "application/json";
      if (c.body) headers["content-type"] = c.type ?? "application/x-tar";
      const req = http.request(
        { socketPath: this.socketPath, method: c.method, path: `/v1.41${c.path}`, headers },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(res);
          readAll(res).then((text) => {
            let message = text.trim();
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? message;
            } catch {}
            const what = `${c.method} ${c.path.split("?")[0]}`;
            if (status !== 404)
              this.log?.warn({ method: c.method, path: c.path, status, message }, "docker api error");
            if (status === 404)
              reject(Object.assign(new NotFoundError("docker object", what), { engineMessage: message }));
            else if (status === 409) reject(new ConflictError(`docker: ${message}`));
            else reject(new EngineError(status, message, what));
          }, reject);
        },
      );
      if (c.timeoutMs)
        req.setTimeout(c.timeoutMs, () => req.destroy(new SandboxError("docker: request timed out")));
      req.on("error", (err: NodeJS.ErrnoException) =>
        reject(
          err instanceof BerthError
            ? err
            : new SandboxError(
                `docker engine not reachable at ${this.socketPath}: ${err.code ?? err.message}`,
              ),
        ),
      );
      if (c.body) c.body.pipe(req);
      else req.end(payload);
    });
  }
}

/** Whether an error is the engine's 404. */
export function isNotFound(err: unknown): boolean {
  return err instanceof NotFoundError;
}

export async function readAll(s: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of s) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

/** Reads a progress stream (load, import, pull) to its end; throws its first `error`. */
export async function drainProgress(s: Readable): Promise<string[]> {
  const text = await readAll(s);
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as { error?: string; stream?: string; status?: string };
    if (m.error) throw new SandboxError(`docker: ${m.error}`);
    if (m.stream) out.push(m.stream);
    if (m.status) out.push(m.status);
  }
  return out;
}
