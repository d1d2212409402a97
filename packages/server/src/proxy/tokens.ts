import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const TOKEN_FORMAT = /^bpt_[A-Za-z0-9_-]{43}$/;

/** A new port token: 32 random bytes, base64url, with a prefix that secret scanners can spot. */
export function newPortToken(): string {
  return `bpt_${randomBytes(32).toString("base64url")}`;
}

/** Only this hash of a token is stored. */
export function hashPortToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Whether `token` is the one whose hash is `hash` (constant time in the token's content). */
export function tokenMatches(token: string, hash: string): boolean {
  if (!TOKEN_FORMAT.test(token)) return false;
  const a = Buffer.from(hashPortToken(token), "hex");
  const b = Buffer.from(hash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
