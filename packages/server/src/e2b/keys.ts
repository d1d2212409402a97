import { randomBytes } from "node:crypto";
import { type ApiKeyRecord, type Store, UnauthorizedError } from "@berth/core";
import { hashKey, looksLikeKey } from "../auth/api-keys.js";
import type { Caller } from "../auth/authenticate.js";

/** The E2B SDKs' key shape: `e2b_` and 40 hex digits (160 random bits). */
const E2B_KEY_FORMAT = /^e2b_[0-9a-f]{40}$/;

/** A new E2B-format key for a tenant and the record to store (only its hash is kept). */
export function newE2bKey(tenantId: string): { key: string; record: ApiKeyRecord } {
  const key = `e2b_${randomBytes(20).toString("hex")}`;
  return {
    key,
    record: {
      id: `key_${randomBytes(8).toString("hex")}`,
      tenantId,
      hash: hashKey(key),
      admin: false,
      createdAt: new Date().toISOString(),
      revokedAt: null,
    },
  };
}

/**
 * The caller of an E2B control-plane request, from its `X-API-Key` header. An E2B-format key
 * and a Berth key are both accepted: they live in the same table and are revoked the same way.
 */
export async function e2bCaller(store: Store, header: string | string[] | undefined): Promise<Caller> {
  const key = typeof header === "string" ? header.trim() : undefined;
  const missing = "missing or invalid API key: send 'X-API-Key: <key>' (make one with `berth e2b env`)";
  if (!key || !(E2B_KEY_FORMAT.test(key) || looksLikeKey(key))) throw new UnauthorizedError(missing);
  const record = await store.findApiKeyByHash(hashKey(key));
  if (!record || record.revokedAt) throw new UnauthorizedError(missing);
  return { tenantId: record.tenantId, keyId: record.id, admin: record.admin };
}
