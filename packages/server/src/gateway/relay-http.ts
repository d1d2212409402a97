import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** The SHA-256 of a token (hex), as tokens are looked up: the token itself is never kept. */
export function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The whole request body, or null when it is longer than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** An error in the Anthropic API's own shape, so the SDK on the other end shows its message. */
export function refuse(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ type: "error", error: { type, message } }));
}
