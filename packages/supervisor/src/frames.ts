import { SandboxError } from "@berth/core";

/** Largest payload berth-init sends or accepts (PROTOCOL.md, "Framing"). */
export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER = 5;

/** One message on a supervisor connection: a type letter and its payload. */
export interface Frame {
  type: string;
  payload: Buffer;
}

/** Encodes one frame: type (1 byte) + length (4 bytes, big-endian) + payload. */
export function encodeFrame(type: string, payload: Buffer | string | object = Buffer.alloc(0)): Buffer {
  if (type.length !== 1) throw new TypeError("frame type must be one character");
  const body = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
  const header = Buffer.alloc(HEADER);
  header.write(type, 0, "latin1");
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/**
 * Incremental frame decoder. berth-init is as hostile as any code in the sandbox, so a frame
 * above `maxFrameBytes` or with a type that is not an ASCII letter or digit is a protocol error
 * (thrown as SandboxError); the caller closes the connection.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  /** Feeds bytes; returns every frame they complete, in order. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    while (this.buffered >= HEADER) {
      const head = this.peek(HEADER);
      const code = head[0] ?? 0;
      const isAlnum =
        (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
      if (!isAlnum) throw new SandboxError("the supervisor sent a malformed frame");
      const length = head.readUInt32BE(1);
      if (length > this.maxFrameBytes)
        throw new SandboxError("the supervisor sent a frame over the size limit");
      if (this.buffered < HEADER + length) break;
      const all = this.take(HEADER + length);
      frames.push({ type: String.fromCharCode(code), payload: all.subarray(HEADER) });
    }
    return frames;
  }

  /** Bytes received that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if ((this.chunks[0]?.length ?? 0) < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
