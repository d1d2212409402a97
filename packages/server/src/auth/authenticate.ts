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
    const header = req.headers.authorization;
    const key = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
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

/** Throws 403 unless the caller holds an admin key. */
export function requireAdmin(req: FastifyRequest): void {
  if (!req.caller.admin) throw new ForbiddenError("this endpoint needs an admin key");
}
