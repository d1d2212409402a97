import { SandboxError } from "@berth/core";
import type { BerthClient, CallOptions } from "./client.js";
import { SseParser } from "./sse.js";
import type { FileEntry } from "./types.js";

/** One change `files.watch` reports. */
export interface FileChange {
  type: "create" | "modify" | "delete";
  path: string;
}

/** Bodies the file API accepts: text (sent as UTF-8), bytes, or a byte stream. */
export type FileData = string | Uint8Array | ReadableStream<Uint8Array>;

/** The files of one sandbox (`sb.files`). Paths are absolute inside the sandbox. */
export class Files {
  constructor(
    private readonly client: BerthClient,
    private readonly sandboxId: string,
  ) {}

  private path(suffix: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}${suffix}`;
  }

  /** Writes a file, creating parent directories. */
  async write(
    path: string,
    data: FileData,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ path: string; size: number }> {
    const body = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.client.json("PUT", this.path("/files/content"), {
      query: { path },
      body,
      signal: opts.signal,
    });
  }

  /** A file's bytes. */
  async read(path: string, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const res = await this.client.request("GET", this.path("/files/content"), {
      query: { path },
      signal: opts.signal,
    });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** A file's bytes as a stream (for large files). */
  async readStream(path: string, opts: { signal?: AbortSignal } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.client.request("GET", this.path("/files/content"), {
      query: { path },
      signal: opts.signal,
    });
    if (!res.body) return new ReadableStream({ start: (c) => c.close() });
    return res.body as ReadableStream<Uint8Array>;
  }

  /** A file decoded as UTF-8. */
  async readText(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, opts));
  }

  /** The entries of a directory. */
  async list(path: string, o: CallOptions = {}): Promise<FileEntry[]> {
    const res = await this.client.json<{ entries: FileEntry[] }>("GET", this.path("/files"), {
      query: { path },
      signal: o.signal,
    });
    return res.entries;
  }

  /** Removes a file, or a directory tree with `recursive`. */
  async remove(path: string, opts: { recursive?: boolean } & CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", this.path("/files"), {
      query: { path, recursive: opts.recursive ? "true" : undefined },
      signal: opts.signal,
    });
  }

  /** Creates a directory (and its parents). */
  async mkdir(path: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("POST", this.path("/files/mkdir"), { json: { path }, signal: o.signal });
  }

  /** Renames or moves a file or directory. */
  async move(from: string, to: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("POST", this.path("/files/move"), { json: { from, to }, signal: o.signal });
  }

  /** Unpacks a tar archive into directory `dir`. */
  async uploadArchive(
    dir: string,
    tar: Uint8Array | ReadableStream<Uint8Array>,
    o: CallOptions = {},
  ): Promise<void> {
    // Sent as octet-stream like file content: the one raw body type the server parses.
    await this.client.json("PUT", this.path("/archive"), {
      query: { path: dir },
      body: tar,
      signal: o.signal,
    });
  }

  /** Directory `dir` as a tar archive stream. */
  async downloadArchive(
    dir: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const res = await this.client.request("GET", this.path("/archive"), {
      query: { path: dir },
      headers: { accept: "application/x-tar" },
      signal: opts.signal,
    });
    if (!res.body) return new ReadableStream({ start: (c) => c.close() });
    return res.body as ReadableStream<Uint8Array>;
  }

  /**
   * Watches `path` (a file or a directory, recursive unless `recursive: false`). Resolves once
   * the watch is in place, so changes made after that are seen; then yields each change until
   * `signal` aborts (the iteration just ends) or the sandbox stops.
   */
  async watch(
    path: string,
    opts: { recursive?: boolean } & CallOptions = {},
  ): Promise<AsyncGenerator<FileChange>> {
    const res = await this.client.request("GET", this.path("/files/watch"), {
      query: { path, recursive: opts.recursive === false ? "false" : undefined },
      headers: { accept: "text/event-stream" },
      signal: opts.signal,
    });
    return changesOf(res, opts.signal);
  }
}

/** The changes of a watch's event stream. */
async function* changesOf(res: Response, signal: AbortSignal | undefined): AsyncGenerator<FileChange> {
  if (!res.body) return;
  const parser = new SseParser();
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
      for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
        if (ev.event === "error") throw new SandboxError(`watch failed: ${ev.data.slice(0, 200)}`);
        yield JSON.parse(ev.data) as FileChange;
      }
  } catch (err) {
    // Aborting is how a watch is ended; it is not an error of the watch.
    if (signal?.aborted) return;
    throw err;
  }
}
