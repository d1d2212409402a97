import type { Runtime, SandboxRecord } from "@berth/core";
import type { CreateSandboxBody } from "@berth/core/contract";
import type { SandboxService } from "./service.js";
import type { SnapshotService } from "./snapshots.js";

/** What a fork needs: the sandbox and snapshot services and whether the runtime copies disks itself. */
export interface ForkDeps {
  sandboxes: SandboxService;
  snapshots: SnapshotService;
  runtime: Pick<Runtime, "forksSandboxes">;
}

/** What the copies may set for themselves; everything else is the source's. */
export interface ForkOptions {
  count: number;
  labels?: Record<string, string>;
  timeoutSeconds?: number;
}

/** One copy: made, or why not. */
export type ForkResult = { sandbox: SandboxRecord } | { error: unknown };

/**
 * Makes `count` copies of a sandbox: its files, env, resources and settings, not its memory
 * (processes running in the source are not in the copies). Where the runtime copies a disk
 * itself (the local driver: a reflink of the source's image, milliseconds whatever the source
 * changed) each copy is made from the source; elsewhere through a snapshot, removed once the
 * copies exist. The copies are made side by side (each mostly waits on mount and runc) and each
 * result says whether its copy was made.
 */
export async function forkSandbox(
  d: ForkDeps,
  tenantId: string,
  sourceId: string,
  o: ForkOptions,
): Promise<ForkResult[]> {
  const src = await d.sandboxes.live(tenantId, sourceId);
  const snap = d.runtime.forksSandboxes ? null : await d.snapshots.create(tenantId, src.id, null);
  const body: CreateSandboxBody = {
    labels: o.labels ?? src.labels,
    network: { egress: src.network.egress, allow: src.network.allow, deny: src.network.deny },
    timeoutSeconds: o.timeoutSeconds ?? src.timeoutSeconds ?? 0,
    ...(src.idle ? { idle: src.idle } : {}),
  };
  const one = async (): Promise<ForkResult> => {
    try {
      const copy = snap
        ? await d.sandboxes.create(tenantId, { ...body, fromSnapshot: snap.id })
        : await d.sandboxes.create(tenantId, body, await d.sandboxes.live(tenantId, src.id));
      return { sandbox: copy };
    } catch (error) {
      return { error };
    }
  };
  try {
    return await Promise.all(Array.from({ length: o.count }, one));
  } finally {
    if (snap) await d.snapshots.remove(tenantId, snap.id).catch(() => {});
  }
}

/**
 * A fork that makes all its copies or none: when one copy fails, those made are deleted and
 * the first failure is thrown (so a caller never has to find and clean up a partial fork).
 */
export async function forkAll(
  d: ForkDeps,
  tenantId: string,
  sourceId: string,
  o: ForkOptions,
): Promise<SandboxRecord[]> {
  const results = await forkSandbox(d, tenantId, sourceId, o);
  const failed = results.find((r): r is { error: unknown } => "error" in r);
  if (!failed) return results.map((r) => (r as { sandbox: SandboxRecord }).sandbox);
  for (const r of results)
    if ("sandbox" in r) await d.sandboxes.remove(tenantId, r.sandbox.id, { force: true }).catch(() => {});
  throw failed.error;
}
