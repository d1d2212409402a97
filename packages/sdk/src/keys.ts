import type { BerthClient } from "./client.js";
import type { ApiKeyInfo } from "./types.js";

/** API key management (admin keys only). */
export class Keys {
  constructor(private readonly client: BerthClient) {}

  /** Makes a key for `tenant` (created on first use); the secret is in the answer only. */
  create(tenant: string, opts: { admin?: boolean } = {}): Promise<ApiKeyInfo> {
    return this.client.json("POST", "/v1/keys", { json: { tenant, admin: opts.admin ?? false } });
  }

  /** Every key, without secrets. */
  async list(): Promise<ApiKeyInfo[]> {
    const res = await this.client.json<ApiKeyInfo[] | { items: ApiKeyInfo[] }>("GET", "/v1/keys");
    return Array.isArray(res) ? res : res.items;
  }

  /** Revokes a key. */
  async revoke(id: string): Promise<void> {
    await this.client.json("DELETE", `/v1/keys/${encodeURIComponent(id)}`);
  }
}
