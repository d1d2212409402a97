import type { Duplex } from "node:stream";
import { type BerthError, SandboxError } from "@berth/core";
import { errorFromErrno, isLaunchPhase } from "./errors.js";
import { encodeFrame, type Frame, FrameDecoder } from "./frames.js";

/** A JSON object from the supervisor (validated field by field by the caller). */
export type Answer = Record<string, unknown>;

/** Parses a JSON frame payload into an object, or throws: the supervisor is untrusted. */
export function parseAnswer(frame: Frame): Answer {
  let v: unknown;
  try {
    v = JSON.parse(frame.payload.toString("utf8"));
  } catch {
    throw invalidAnswer();
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidAnswer();
  return v as Answer;
}

/** The error for any answer that breaks the protocol. */
export function invalidAnswer(): SandboxError {
  return new SandboxError("the sandbox's supervisor sent an invalid answer");
}

type Sink = { frame: (f: Frame) => void; end: (err: BerthError | undefined) => void };

/**
 * One supervisor connection (one operation): decodes frames, answers `next()` in request/reply
 * phases, and hands frames to a sink once the operation streams. A protocol error, a socket
 * error or a close ends it; the owner calls close() to release it.
 */
export class FrameConnection {
  private readonly decoder: FrameDecoder;
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private sink: Sink | undefined;
  private ended: BerthError | undefined;
  private closedByUs = false;

  constructor(
    readonly socket: Duplex,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    socket.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        this.finish(e as BerthError);
        socket.destroy();
        return;
      }
      for (const f of frames) this.deliver(f);
    });
    socket.on("error", () =>
      this.finish(new SandboxError("the connection to the sandbox's supervisor failed")),
    );
    socket.on("close", () => this.finish(new SandboxError("the sandbox's supervisor closed the connection")));
  }

  /** Sends a frame; false when the socket buffer is full (see drained()). */
  send(type: string, payload?: Buffer | string | object): boolean {
    if (this.ended || this.socket.destroyed) return false;
    return this.socket.write(encodeFrame(type, payload));
  }

  /** The next frame (request/reply phase); rejects when the connection ended first. */
  next(): Promise<Frame> {
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The next frame as a reply: `ok:false` becomes a Berth error (about `path`), others an Answer. */
  async reply(path?: string): Promise<Answer> {
    const f = await this.next();
    if (f.type !== "r") throw invalidAnswer();
    const a = parseAnswer(f);
    if (a.ok === true) return a;
    if (a.ok === false && typeof a.errno === "string" && /^E[A-Z0-9]{1,15}$/.test(a.errno)) {
      const launch = isLaunchPhase(a.phase)
        ? { phase: a.phase, reason: typeof a.reason === "string" ? a.reason : a.errno }
        : undefined;
      throw errorFromErrno(a.errno, typeof a.message === "string" ? a.message : "", path, launch);
    }
    throw invalidAnswer();
  }

  /** Switches to streaming: queued and later frames go to `frame`, the end (with its cause) to `end`. */
  stream(sink: Sink): void {
    this.sink = sink;
    for (let f = this.queue.shift(); f; f = this.queue.shift()) sink.frame(f);
    if (this.ended) sink.end(this.closedByUs ? undefined : this.ended);
  }

  /** Resolves when the socket can take more, rejects when the connection ended. */
  drained(): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", fail);
        resolve();
      };
      const fail = () => {
        this.socket.off("drain", done);
        reject(this.ended ?? new SandboxError("the sandbox's supervisor closed the connection"));
      };
      this.socket.once("drain", done);
      this.socket.once("close", fail);
    });
  }

  /** Whether a frame arrived that nobody has read yet (e.g. an error reply during an upload). */
  get hasPending(): boolean {
    return this.queue.length > 0;
  }

  /** Ends the connection; berth-init kills whatever the operation started in the foreground. */
  close(): void {
    if (!this.ended) this.closedByUs = true;
    this.socket.destroy();
  }

  private deliver(f: Frame): void {
    if (this.ended) return;
    if (this.sink) this.sink.frame(f);
    else if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(f);
    } else this.queue.push(f);
  }

  private finish(err: BerthError): void {
    if (this.ended) return;
    this.ended = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
    this.sink?.end(this.closedByUs ? undefined : err);
  }
}
