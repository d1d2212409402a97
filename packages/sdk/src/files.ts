import type { BerthClient } from "./client.js";
import type { FileEntry } from "./types.js";

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
  async list(path: string): Promise<FileEntry[]> {
    const res = await this.client.json<{ entries: FileEntry[] }>("GET", this.path("/files"), {
      query: { path },
    });
    return res.entries;
  }

  /** Removes a file, or a directory tree with `recursive`. */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.client.json("DELETE", this.path("/files"), {
      query: { path, recursive: opts.recursive ? "true" : undefined },
    });
  }

  /** Creates a directory (and its parents). */
  async mkdir(path: string): Promise<void> {
    await this.client.json("POST", this.path("/files/mkdir"), { json: { path } });
  }

  /** Renames or moves a file or directory. */
  async move(from: string, to: string): Promise<void> {
    await this.client.json("POST", this.path("/files/move"), { json: { from, to } });
  }

  /** Unpacks a tar archive into directory `dir`. */
  async uploadArchive(dir: string, tar: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
    // Sent as octet-stream like file content: the one raw body type the server parses.
    await this.client.json("PUT", this.path("/archive"), { query: { path: dir }, body: tar });
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
}
