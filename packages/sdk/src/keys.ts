import type { BerthClient, CallOptions } from "./client.js";
import type { ApiKeyInfo } from "./types.js";

/** API key management (admin keys only). */
export class Keys {
  constructor(private readonly client: BerthClient) {}

  /** Makes a key for `tenant` (created on first use); the secret is in the answer only. */
  create(tenant: string, opts: { admin?: boolean } & CallOptions = {}): Promise<ApiKeyInfo> {
    return this.client.json("POST", "/v1/keys", {
      json: { tenant, admin: opts.admin ?? false },
      signal: opts.signal,
    });
  }

  /** Every key, without secrets. */
  async list(o: CallOptions = {}): Promise<ApiKeyInfo[]> {
    const res = await this.client.json<ApiKeyInfo[] | { items: ApiKeyInfo[] }>("GET", "/v1/keys", {
      signal: o.signal,
    });
    return Array.isArray(res) ? res : res.items;
  }

  /** Revokes a key. */
  async revoke(id: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", `/v1/keys/${encodeURIComponent(id)}`, { signal: o.signal });
  }
}
