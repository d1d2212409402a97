import { ForbiddenError, type Store, UnauthorizedError } from "@berth/core";
import type { FastifyRequest } from "fastify";
import { hashKey, looksLikeKey } from "./api-keys.js";

/** Who is calling: resolved once per request from the API key. */
export interface Caller {
  tenantId: string;
  keyId: string;
  admin: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    caller: Caller;
  }
}

/** How long a looked-up key is trusted without asking the store again (revocation on this server is immediate). */
const CACHE_MS = 5_000;

/** Resolves bearer keys to callers, with a short cache so an exec does not wait on the store. */
export class Authenticator {
  private readonly cache = new Map<string, { caller: Caller; until: number }>();

  constructor(private readonly store: Store) {}

  async authenticate(req: FastifyRequest): Promise<Caller> {
    const key = bearerOf(req);
    if (!key || !looksLikeKey(key)) throw new UnauthorizedError();
    const hash = hashKey(key);
    const hit = this.cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.caller;
    const record = await this.store.findApiKeyByHash(hash);
    if (!record || record.revokedAt) throw new UnauthorizedError();
    const caller = { tenantId: record.tenantId, keyId: record.id, admin: record.admin };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { caller, until: Date.now() + CACHE_MS });
    return caller;
  }

  /** Drops cached callers of a revoked key. */
  forget(keyId: string): void {
    for (const [hash, v] of this.cache) if (v.caller.keyId === keyId) this.cache.delete(hash);
  }
}

/**
 * The API key of a request: `Authorization: Bearer <key>`, or for a browser's WebSocket (which
 * cannot send headers) a `berth.bearer.<key>` entry in `Sec-WebSocket-Protocol`.
 */
function bearerOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice(7).trim();
  // Only on a WebSocket upgrade, the one request a browser cannot give an Authorization header.
  const protocols = req.headers["sec-websocket-protocol"];
  if (req.headers.upgrade?.toLowerCase() !== "websocket" || typeof protocols !== "string") return undefined;
  for (const p of protocols.split(",")) {
    const t = p.trim();
    if (t.startsWith("berth.bearer.")) return t.slice("berth.bearer.".length);
  }
  return undefined;
}

/** Throws 403 unless the caller holds an admin key. */
export function requireAdmin(req: FastifyRequest): void {
  if (!req.caller.admin) throw new ForbiddenError("this endpoint needs an admin key");
}
