import { ConflictError, type Store } from "@berth/core";
import type { CreateSandboxBody } from "@berth/core/contract";

/**
 * Which replica must create a sandbox: the one holding its snapshot's archive or its volumes'
 * disks, when that is not this one. Null: create here. A body needing two replicas is refused.
 */
export async function creatorOf(
  store: Store,
  me: string,
  tenantId: string,
  body: CreateSandboxBody,
): Promise<string | null> {
  const needs = new Set<string>();
  if (body.fromSnapshot) {
    const snap = await store.getSnapshot(body.fromSnapshot);
    if (snap && snap.tenantId === tenantId) needs.add((await store.replicaOf("snapshots", snap.id)) ?? me);
  }
  for (const v of body.volumes ?? []) {
    const vol = await store.getVolumeByName(tenantId, v.name);
    if (vol) needs.add((await store.replicaOf("volumes", vol.id)) ?? me);
  }
  if (needs.size > 1)
    throw new ConflictError("the snapshot and volumes asked for are held by different servers");
  const [replica] = needs;
  return replica && replica !== me ? replica : null;
}

/** Sends a JSON request on to another replica as the caller made it, and returns its answer. */
export async function relayJson(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
  replica: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(path, url), {
    method,
    headers: {
      authorization: String(headers.authorization ?? ""),
      "content-type": "application/json",
      "x-berth-forwarded-by": replica,
      ...(headers["x-request-id"] ? { "x-request-id": String(headers["x-request-id"]) } : {}),
    },
    body: JSON.stringify(body ?? {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
