import { randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A random id of lowercase letters and digits, valid as a hostname and a DNS label. */
export function newId(prefix: string, length = 16): string {
  const bytes = randomBytes(length);
  let out = prefix;
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** Sandbox ids: `sb` + 16 chars; the sandbox's hostname is its id. */
export const newSandboxId = (): string => newId("sb");

/** True when `id` has the shape of a sandbox id (cheap check before any lookup). */
export function isSandboxId(id: string): boolean {
  return /^sb[a-z0-9]{16}$/.test(id);
}
