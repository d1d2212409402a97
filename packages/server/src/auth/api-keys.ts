import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ApiKeyRecord, Store } from "@berth/core";

const KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const KEY_FORMAT = /^berth_[A-Za-z0-9]{40}$/;

/** 40 random base62 characters: ~238 bits, unguessable. */
function randomText(n: number): string {
  const bytes = randomBytes(n * 2);
  let out = "";
  // Rejection sampling keeps every character equally likely.
  for (const b of bytes) {
    if (b < 248) out += KEY_ALPHABET[b % 62];
    if (out.length === n) return out;
  }
  return out + randomText(n - out.length);
}

/** Only the hash of a key is stored; a stolen database does not hand out keys. */
export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** True when the text has the shape of a Berth key (cheap check before a store lookup). */
export function looksLikeKey(key: string): boolean {
  return KEY_FORMAT.test(key);
}

/** A new key and the record to store for it. */
export function newApiKey(tenantId: string, admin: boolean): { key: string; record: ApiKeyRecord } {
  const key = `berth_${randomText(40)}`;
  return {
    key,
    record: {
      id: `key_${randomText(12).toLowerCase()}`,
      tenantId,
      hash: hashKey(key),
      admin,
      createdAt: new Date().toISOString(),
      revokedAt: null,
    },
  };
}

export const DEFAULT_TENANT = "default";

/**
 * Makes sure an admin key exists and is in `<dataDir>/admin-key` (mode 0600). A key file from an
 * earlier start is kept and (re)registered, so a new database (e.g. switching to PostgreSQL)
 * still accepts the key people already use.
 */
export async function ensureAdminKey(store: Store, dataDir: string): Promise<string> {
  const path = join(dataDir, "admin-key");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let key = (await readFile(path, "utf8").catch(() => "")).trim();
  if (!(await store.getTenant(DEFAULT_TENANT)))
    await store
      .createTenant({ id: DEFAULT_TENANT, name: DEFAULT_TENANT, createdAt: new Date().toISOString() })
      .catch(async (err) => {
        // Another replica sharing the store made it at the same moment.
        if (!(await store.getTenant(DEFAULT_TENANT))) throw err;
      });
  if (looksLikeKey(key)) {
    const known = await store.findApiKeyByHash(hashKey(key));
    if (known && !known.revokedAt) return path;
    if (!known) {
      const record = newApiKey(DEFAULT_TENANT, true).record;
      await store.createApiKey({ ...record, hash: hashKey(key) });
      return path;
    }
  }
  const fresh = newApiKey(DEFAULT_TENANT, true);
  key = fresh.key;
  await store.createApiKey(fresh.record);
  // Written under a temp name and renamed: a reader never sees a half-written key.
  await writeFile(`${path}.tmp`, `${key}\n`, { mode: 0o600 });
  await chmod(`${path}.tmp`, 0o600);
  await rename(`${path}.tmp`, path);
  return path;
}
