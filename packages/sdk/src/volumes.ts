import type { Volume as VolumeSchema } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/** A named persistent directory; mount it with `Sandbox.create({ volumes: [{ name, mountPath }] })`. */
export type VolumeInfo = Static<typeof VolumeSchema>;

/** The caller's volumes. */
export class Volumes {
  constructor(private readonly client: BerthClient) {}

  /** Makes a volume of `sizeMiB` (the server's default 1024 when left out). */
  create(name: string, opts: { sizeMiB?: number } & CallOptions = {}): Promise<VolumeInfo> {
    return this.client.json("POST", "/v1/volumes", {
      json: { name, ...(opts.sizeMiB !== undefined ? { sizeMiB: opts.sizeMiB } : {}) },
      signal: opts.signal,
    });
  }

  /** Every volume of the caller's tenant, with the bytes each uses. */
  async list(o: CallOptions = {}): Promise<VolumeInfo[]> {
    return (await this.client.json<{ items: VolumeInfo[] }>("GET", "/v1/volumes", { signal: o.signal }))
      .items;
  }

  /** One volume (NotFoundError when there is none). */
  get(name: string, o: CallOptions = {}): Promise<VolumeInfo> {
    return this.client.json("GET", `/v1/volumes/${encodeURIComponent(name)}`, { signal: o.signal });
  }

  /** Deletes a volume and its files (ConflictError while a sandbox mounts it). */
  async remove(name: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", `/v1/volumes/${encodeURIComponent(name)}`, { signal: o.signal });
  }
}
