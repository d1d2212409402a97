/**
 * Pre-created Pods: `size` sandbox Pods of the default shape (template, resources) started ahead,
 * with their /workspace claims, labelled with the pool's key and selected by no NetworkPolicy of
 * a sandbox. `take` hands one to a new sandbox by relabelling it under its resourceVersion, so
 * two servers sharing the namespace can never take the same Pod; the pool refills behind.
 */
import { randomBytes } from "node:crypto";
import { ConflictError, type Logger } from "@berth/core";
import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import type { Cluster } from "./cluster.js";
import { LABEL } from "./objects.js";
import { isEnded, isRunning } from "./pod-status.js";

export interface WarmPodsOptions {
  cluster: Cluster;
  size: number;
  /** The pool's key (which shape of sandbox its Pods are). */
  key: string;
  /** The Pod and claim of one pooled sandbox named `name`. */
  build(name: string): { pod: V1Pod; claim: V1PersistentVolumeClaim };
  log: Logger;
}

export class WarmPods {
  private filling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: WarmPodsOptions) {}

  /** Starts Pods until `size` are in the pool (running or starting); never more. */
  fill(): Promise<void> {
    if (this.o.size <= 0 || this.closed) return Promise.resolve();
    this.filling ??= this.refill().finally(() => {
      this.filling = null;
    });
    return this.filling;
  }

  private async refill(): Promise<void> {
    try {
      const have = (await this.o.cluster.listPods(this.selector)).filter((p) => !isEnded(p));
      for (let i = have.length; i < this.o.size && !this.closed; i++) {
        const name = `berth-pool-${randomBytes(5).toString("hex")}`;
        const { pod, claim } = this.o.build(name);
        await this.o.cluster.createClaim(claim);
        await this.o.cluster.createPod(pod);
      }
    } catch (err) {
      this.o.log.warn({ err: String(err) }, "warm pod pool refill failed");
    }
  }

  /** Gives a running pooled Pod to sandbox `id` (relabelled with its claim); null when none is ready. */
  async take(id: string): Promise<string | null> {
    if (this.o.size <= 0) return null;
    const ready = (await this.o.cluster.listPods(this.selector)).filter(isRunning);
    for (const pod of ready) {
      const labels: Record<string, string> = { ...pod.metadata?.labels, [LABEL.sandbox]: id };
      delete labels[LABEL.pool];
      try {
        // resourceVersion makes this a compare-and-swap: 409 when another server took it first.
        await this.o.cluster.replacePod({ ...pod, metadata: { ...pod.metadata, labels } });
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
      const claimName = pod.spec?.volumes?.find((v) => v.name === "data")?.persistentVolumeClaim?.claimName;
      const claim = claimName ? await this.o.cluster.readClaim(claimName) : null;
      if (claim) {
        const claimLabels: Record<string, string> = { ...claim.metadata?.labels, [LABEL.sandbox]: id };
        delete claimLabels[LABEL.pool];
        await this.o.cluster.replaceClaim({ ...claim, metadata: { ...claim.metadata, labels: claimLabels } });
      }
      void this.fill();
      return pod.metadata?.name ?? null;
    }
    void this.fill();
    return null;
  }

  /** Stops refilling; with `drain`, deletes the pooled Pods and their claims. */
  async close(drain: boolean): Promise<void> {
    this.closed = true;
    await this.filling;
    if (!drain) return;
    for (const pod of await this.o.cluster.listPods(this.selector))
      await this.o.cluster.deletePod(pod.metadata?.name ?? "");
    for (const c of await this.o.cluster.listClaims(this.selector))
      await this.o.cluster.deleteClaim(c.metadata?.name ?? "");
  }

  private get selector(): string {
    return `${LABEL.pool}=${this.o.key}`;
  }
}
