import { BerthError, errorFromBody } from "@berth/core";
import WebSocket from "ws";
import { type ConnectionOptions, resolveApiKey, resolveApiUrl } from "./config.js";
import { ConnectionError } from "./errors.js";
import { type SseEvent, SseParser } from "./sse.js";

/** Query values; arrays repeat the parameter (`label=a=1&label=b=2`), undefined is skipped. */
export type Query = Record<string, string | number | boolean | undefined | readonly string[]>;

/** What every call of the SDK accepts: a signal that aborts the call (it rejects with the signal's reason). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of one HTTP call. */
export interface RequestOptions {
  query?: Query;
  /** A JSON body (sets Content-Type). */
  json?: unknown;
  /** A raw body (Content-Type application/octet-stream unless `headers` says otherwise). */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Options of an SSE stream. */
export interface StreamOptions extends RequestOptions {
  /** Reconnect with `Last-Event-ID` when the connection drops before `isLast` saw the end. */
  reconnect?: boolean;
  /** Start after this event id. */
  lastEventId?: string;
  /** True for the event that ends the stream; needed to tell a drop from the end. */
  isLast?: (e: SseEvent) => boolean;
  /**
   * How long to keep reconnecting, with backoff, while no event comes (default 60 000 ms; a server
   * restart takes seconds). Any event starts the time again.
   */
  reconnectForMs?: number;
}

/** Default of `StreamOptions.reconnectForMs`. */
export const RECONNECT_FOR_MS = 60_000;
/** First and longest pause between reconnects. */
const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 5_000;

const USER_AGENT = "berth-sdk/0.1.0";

/**
 * The low-level client: base URL and key, fetch that turns error bodies into the typed errors
 * of @berth/core, SSE streams that resume with `Last-Event-ID`, and WebSockets.
 */
export class BerthClient {
  readonly apiUrl: string;
  readonly apiKey: string;

  constructor(opts: ConnectionOptions = {}) {
    this.apiUrl = resolveApiUrl(opts.apiUrl);
    this.apiKey = resolveApiKey(opts.apiKey);
  }

  /** The absolute URL of an API path with its query string. */
  url(path: string, query?: Query): string {
    const u = new URL(this.apiUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) u.searchParams.append(k, item);
      else u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  /** One HTTP call; resolves with the response when it is 2xx, else throws the typed error. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.apiKey}`,
      "user-agent": USER_AGENT,
      ...opts.headers,
    };
    let body: BodyInit | undefined;
    if (opts.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      headers["content-type"] ??= "application/octet-stream";
      body = opts.body as BodyInit;
    }
    let res: Response;
    try {
      res = await fetch(this.url(path, opts.query), {
        method,
        headers,
        body,
        signal: opts.signal,
        // Needed by Node's fetch to send a streamed request body.
        ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (err) {
      // An aborted call rejects with the signal's reason (an AbortError by default), not as a lost connection.
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw toConnectionError(err, this.apiUrl);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  /** A call whose answer is JSON (or nothing, for 204). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, {
      ...opts,
      headers: { accept: "application/json", ...opts.headers },
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * The events of an SSE stream. An `error` event becomes the typed error it carries. With
   * `reconnect`, a dropped connection is resumed from the last event id, so nothing is lost
   * or seen twice (only safe for GET streams that do not start work).
   */
  async *stream(method: string, path: string, opts: StreamOptions = {}): AsyncGenerator<SseEvent> {
    let lastEventId = opts.lastEventId;
    let failures = 0;
    /** When the reconnects without an event began (undefined: the last connection brought one). */
    let failingSince: number | undefined;
    const reconnectForMs = opts.reconnectForMs ?? RECONNECT_FOR_MS;
    for (;;) {
      const parser = new SseParser(lastEventId);
      let ended = false;
      try {
        const res = await this.request(method, path, {
          ...opts,
          headers: {
            accept: "text/event-stream",
            ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}),
            ...opts.headers,
          },
        });
        if (!res.body) return;
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
            lastEventId = parser.lastEventId;
            failures = 0;
            failingSince = undefined;
            if (ev.event === "error") throw errorFromEvent(ev);
            yield ev;
            if (opts.isLast?.(ev)) ended = true;
          }
          if (ended) return;
        }
        for (const ev of parser.push(decoder.decode())) {
          if (ev.event === "error") throw errorFromEvent(ev);
          yield ev;
          if (opts.isLast?.(ev)) return;
        }
        if (!opts.isLast) return;
        if (!opts.reconnect) throw new ConnectionError("event stream ended before its last event");
      } catch (err) {
        if (err instanceof BerthError && !(err instanceof ConnectionError)) throw err;
        if (opts.signal?.aborted) throw err;
        if (!opts.reconnect) throw err instanceof ConnectionError ? err : toConnectionError(err, this.apiUrl);
      }
      failures++;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > reconnectForMs)
        throw new ConnectionError(
          `event stream dropped ${failures} times in a row over ${Math.round((Date.now() - failingSince) / 1000)} s; giving up`,
        );
      // Exponential backoff with jitter (the server's `retry:` is the floor), so a restarting
      // server is not hammered by every client at once.
      const backoff = Math.min(BACKOFF_FIRST_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
      await delay(Math.max(parser.retryMs ?? 0, backoff * (0.5 + Math.random() / 2)));
    }
  }

  /**
   * Opens a WebSocket on an API path, authenticated by header; rejects with the typed error, or
   * with the signal's reason when `signal` aborts before the socket is open.
   */
  websocket(path: string, query?: Query, signal?: AbortSignal): Promise<WebSocket> {
    const url = this.url(path, query).replace(/^http/, "ws");
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${this.apiKey}`, "user-agent": USER_AGENT },
      });
      const onAbort = () => {
        ws.terminate();
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      ws.once("close", () => signal?.removeEventListener("abort", onAbort));
      ws.once("open", () => {
        signal?.removeEventListener("abort", onAbort);
        ws.removeAllListeners("error");
        resolve(ws);
      });
      ws.once("error", (err) => reject(toConnectionError(err, this.apiUrl)));
      ws.once("unexpected-response", (req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          reject(errorFromText(res.statusCode ?? 500, text));
          req.destroy();
        });
      });
    });
  }
}

/** Turns a non-2xx response into the typed error its body names. */
export async function errorFromResponse(res: Response): Promise<BerthError> {
  return errorFromText(res.status, await res.text().catch(() => ""));
}

function errorFromText(status: number, text: string): BerthError {
  try {
    const body = JSON.parse(text) as Parameters<typeof errorFromBody>[1];
    if (body && typeof body === "object" && body.error) return errorFromBody(status, body);
  } catch {
    // Not JSON (a proxy's page, say): fall through.
  }
  return new BerthError("http_error", `HTTP ${status}: ${text.slice(0, 200)}`, undefined, status);
}

function errorFromEvent(ev: SseEvent): BerthError {
  try {
    return errorFromBody(500, JSON.parse(ev.data));
  } catch {
    return new BerthError("internal_error", `stream error: ${ev.data.slice(0, 200)}`);
  }
}

function toConnectionError(err: unknown, apiUrl: string): ConnectionError {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new ConnectionError(`cannot reach Berth at ${apiUrl}: ${reason}`, { reason });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
