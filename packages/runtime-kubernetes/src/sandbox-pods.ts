import type { V1Pod } from "@kubernetes/client-node";
import type { Cluster } from "./cluster.js";
import { LABEL, MANAGED_BY, podName } from "./objects.js";
import { isRunning } from "./pod-status.js";

export { SANDBOX_ID } from "@berth/core";

/**
 * Which Pod is each sandbox's, as last read from the API server: its name (a taken warm Pod
 * keeps its own) and the address it sends from. The driver's lifecycle and egress both ask here.
 */
export class SandboxPods {
  /** Sandbox id -> its Pod's name. */
  private readonly names = new Map<string, string>();
  /** Pod IP -> sandbox id (refreshed from the API when an address is unknown). */
  private ips = new Map<string, string>();
  private ipsReadAt = 0;

  constructor(private readonly cluster: Cluster) {}

  /** Records that sandbox `id`'s Pod is `name` (just created or taken from the warm pool). */
  assign(id: string, name: string): void {
    this.names.set(id, name);
  }

  /** The sandbox is gone: its Pod's name and address are forgotten. */
  forget(id: string): void {
    this.names.delete(id);
    this.forgetIp(id);
  }

  /** The sandbox's Pod, by its own name or (a taken warm Pod) by its label. */
  async find(id: string): Promise<V1Pod | null> {
    const known = this.names.get(id) ?? podName(id);
    const pod = await this.cluster.readPod(known);
    if (pod?.metadata?.labels?.[LABEL.sandbox] === id && !pod.metadata.deletionTimestamp) {
      this.rememberIp(id, pod);
      return pod;
    }
    const found = (await this.cluster.listPods(`${LABEL.sandbox}=${id}`)).find(
      (p) => !p.metadata?.deletionTimestamp,
    );
    if (found?.metadata?.name) {
      this.names.set(id, found.metadata.name);
      this.rememberIp(id, found);
    } else this.names.delete(id);
    return found ?? null;
  }

  /** The name of the sandbox's Pod, or null when it has none. */
  async nameOf(id: string): Promise<string | null> {
    return this.names.get(id) ?? (await this.find(id))?.metadata?.name ?? null;
  }

  /** The sandbox's Pod when it runs. */
  async running(id: string): Promise<V1Pod | null> {
    const pod = await this.find(id);
    return pod && isRunning(pod) ? pod : null;
  }

  /** Where a running Pod of a sandbox sends from (the model gateway takes the sandbox's token only from there). */
  rememberIp(id: string, pod: V1Pod): void {
    const ip = pod.status?.podIP;
    if (!ip || !isRunning(pod)) return;
    this.forgetIp(id);
    this.ips.set(ip, id);
  }

  /** A Pod gone: its address may go to another sandbox's Pod next. */
  forgetIp(id: string): void {
    for (const [ip, owner] of this.ips) if (owner === id) this.ips.delete(ip);
  }

  /** The address the sandbox's running Pod sends from, as last read (null: not known). */
  ipOf(id: string): string | null {
    for (const [ip, owner] of this.ips) if (owner === id) return ip;
    return null;
  }

  /** The sandbox whose running Pod has `ip`; an unknown address re-reads the namespace (at most once a second). */
  async sandboxAt(ip: string): Promise<string | undefined> {
    const id = this.ips.get(ip);
    if (id || Date.now() - this.ipsReadAt <= 1000) return id;
    this.ipsReadAt = Date.now();
    const next = new Map<string, string>();
    for (const p of await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`)) {
      const sandbox = p.metadata?.labels?.[LABEL.sandbox];
      if (sandbox && p.status?.podIP && isRunning(p)) next.set(p.status.podIP, sandbox);
    }
    this.ips = next;
    return next.get(ip);
  }

  /** Deletes a Pod and waits until the API server no longer has it. */
  async deleteAndWait(name: string): Promise<void> {
    await this.cluster.deletePod(name);
    for (let i = 0; i < 600 && (await this.cluster.readPod(name)); i++)
      await new Promise((r) => setTimeout(r, i < 20 ? 50 : 250));
  }
}
