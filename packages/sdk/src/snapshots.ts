import type { Snapshot as SnapshotSchema } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/** A captured writable layer of a sandbox; `Sandbox.create({ fromSnapshot: id })` starts from it. */
export type SnapshotInfo = Static<typeof SnapshotSchema>;

/** The caller's snapshots (`sb.snapshot()` takes one). */
export class Snapshots {
  constructor(private readonly client: BerthClient) {}

  /** Every snapshot of the caller's tenant. */
  async list(o: CallOptions = {}): Promise<SnapshotInfo[]> {
    return (await this.client.json<{ items: SnapshotInfo[] }>("GET", "/v1/snapshots", { signal: o.signal }))
      .items;
  }

  /** One snapshot (NotFoundError when there is none). */
  get(id: string, o: CallOptions = {}): Promise<SnapshotInfo> {
    return this.client.json("GET", `/v1/snapshots/${encodeURIComponent(id)}`, { signal: o.signal });
  }

  /** Deletes a snapshot and its archive. */
  async remove(id: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", `/v1/snapshots/${encodeURIComponent(id)}`, { signal: o.signal });
  }
}
