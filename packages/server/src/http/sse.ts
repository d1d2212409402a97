import { BerthError } from "@berth/core";
import type { FastifyReply, FastifyRequest } from "fastify";

/** True when the client asked for Server-Sent Events. */
export function wantsEventStream(req: FastifyRequest): boolean {
  return (req.headers.accept ?? "").includes("text/event-stream");
}

/** The `Last-Event-ID` a reconnecting client sent, if any. */
export function lastEventId(req: FastifyRequest): string | undefined {
  const v = req.headers["last-event-id"];
  return typeof v === "string" && v.length > 0 && v.length <= 128 ? v : undefined;
}

/** An open SSE response: write events, wait for the client to drain, notice it leaving. */
export interface EventStream {
  send(event: string | undefined, data: unknown, id?: string | number): boolean;
  /**
   * Sends an `error` event with the contract's error body: a BerthError as it is, anything else
   * as `fallback` makes it (so its code comes from the registry and no internals leak).
   */
  sendError(err: unknown, fallback: (e: Error) => BerthError, id?: string | number): boolean;
  /** Resolves when the socket can take more (call after `send` returned false). */
  drained(): Promise<void>;
  end(): void;
  readonly closed: boolean;
  onClose(fn: () => void): void;
}

const HEARTBEAT_MS = 15_000;

/** Takes over the response and starts an SSE stream (with heartbeats so proxies keep it open). */
export function openEventStream(req: FastifyRequest, reply: FastifyReply): EventStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  let closed = false;
  const closers: (() => void)[] = [];
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  const onGone = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const fn of closers) fn();
  };
  res.on("close", onGone);
  req.raw.on("aborted", onGone);
  return {
    send(event, data, id) {
      if (closed) return true;
      let text = "";
      if (id !== undefined) text += `id: ${id}\n`;
      if (event) text += `event: ${event}\n`;
      text += `data: ${JSON.stringify(data)}\n\n`;
      return res.write(text);
    },
    sendError(err, fallback, id) {
      const e =
        err instanceof BerthError ? err : fallback(err instanceof Error ? err : new Error(String(err)));
      return this.send("error", e.toBody(), id);
    },
    drained() {
      return closed
        ? Promise.resolve()
        : new Promise((r) => {
            const done = () => {
              res.off("drain", done);
              res.off("close", done);
              r();
            };
            res.once("drain", done);
            res.once("close", done);
          });
    },
    end() {
      if (!closed) res.end();
      onGone();
    },
    get closed() {
      return closed;
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
  };
}
