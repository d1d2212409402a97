import {
  type EgressControl,
  type EgressMode,
  type KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotFoundError,
  type SandboxAddressing,
} from "@berth/core";
import type { Cluster } from "./cluster.js";
import { PodEgressProxy } from "./egress-proxy.js";
import {
  ANNOTATION,
  dataClaimName,
  egressPolicy,
  type GatewayTarget,
  gatewayKey,
  LABEL,
  MANAGED_BY,
} from "./objects.js";
import { SANDBOX_ID, type SandboxPods } from "./sandbox-pods.js";

/**
 * The Kubernetes driver's egress and addresses: a NetworkPolicy per sandbox (pointed at this
 * replica's model gateway), and for hostname allowlists an egress proxy that tells Pods apart by
 * their address. Pods are reached through the API server, never directly: no `address`.
 */
export class PodEgress implements EgressControl, SandboxAddressing {
  readonly egressModes: readonly EgressMode[] = ["none", "open", "allowlist"];
  /** Hostname allowlists' filter (with a gateway address and a proxy port). */
  private readonly proxy: PodEgressProxy | null;
  /** Sandbox id -> its egress policy as last applied (the proxy's view). */
  private readonly policies = new Map<string, NetworkPolicy>();

  constructor(
    private readonly cluster: Cluster,
    private readonly pods: SandboxPods,
    private readonly o: {
      gateway?: GatewayTarget;
      podCidrs?: string[];
      dnsUpstream?: string;
      lock: KeyedLock;
      log: Logger;
    },
  ) {
    this.proxy = o.gateway?.proxyPort
      ? new PodEgressProxy({ policyOf: (ip) => this.policyOfPod(ip), resolver: o.dnsUpstream, log: o.log })
      : null;
  }

  /** Re-points this replica's sandboxes' policies at its gateway, then starts the proxy. */
  async start(): Promise<void> {
    await this.repointGateway();
    if (this.proxy && this.o.gateway?.proxyPort) await this.proxy.start(this.o.gateway.proxyPort);
  }

  close(): void {
    this.proxy?.close();
  }

  /** Puts a new sandbox's policy in place (before its Pod exists: the Pod is never up without it). */
  async apply(id: string, policy: NetworkPolicy): Promise<void> {
    await this.cluster.applyPolicy(egressPolicy(id, policy, this.o.gateway));
    this.policies.set(id, policy);
  }

  /** The sandbox is gone: the proxy forgets its policy. */
  forget(id: string): void {
    this.policies.delete(id);
  }

  async setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    await this.o.lock.run(id, async () => {
      if (!(await this.pods.find(id)) && !(await this.cluster.readClaim(dataClaimName(id))))
        throw new NotFoundError("sandbox", id);
      await this.apply(id, policy);
    });
  }

  /** The server does not connect to Pods directly (their policy may drop it). */
  address(_id: string): string | null {
    return null;
  }

  /** The address the sandbox's running Pod sends from, as last read from the API server (null: not known). */
  sourceAddress(id: string): string | null {
    return this.pods.ipOf(id);
  }

  /** The model gateway's address as every Pod of this replica reaches it (its policy allows it). */
  hostAddress(_id: string): string | null {
    return this.o.gateway?.address ?? null;
  }

  sandboxCidrs(): string[] {
    return this.o.gateway ? (this.o.podCidrs ?? []) : [];
  }

  /** With the egress proxy: its address for every process (the gateway is reached directly). */
  processEnv(_id: string): Record<string, string> {
    const g = this.o.gateway;
    if (!g?.proxyPort) return {};
    const url = `http://${g.address}:${g.proxyPort}`;
    const direct = `localhost,127.0.0.1,::1,${g.address}`;
    return {
      HTTP_PROXY: url,
      HTTPS_PROXY: url,
      http_proxy: url,
      https_proxy: url,
      NO_PROXY: direct,
      no_proxy: direct,
    };
  }

  /**
   * After this replica's gateway moved (a restarted server Pod has a new IP), its sandboxes'
   * policies still allow the old address: rewrite them from the egress policy each one keeps.
   */
  private async repointGateway(): Promise<void> {
    const g = this.o.gateway;
    if (!g) return;
    const mine = await this.cluster.listPolicies(
      `${LABEL.managedBy}=${MANAGED_BY},${LABEL.replica}=${g.replica}`,
    );
    for (const p of mine) {
      const id = p.metadata?.labels?.[LABEL.sandbox];
      const kept = p.metadata?.annotations?.[ANNOTATION.network];
      if (
        !id ||
        !SANDBOX_ID.test(id) ||
        !kept ||
        p.metadata?.annotations?.[ANNOTATION.gateway] === gatewayKey(g)
      )
        continue;
      await this.cluster.applyPolicy(egressPolicy(id, JSON.parse(kept) as NetworkPolicy, g));
      this.o.log.info({ id, gateway: gatewayKey(g) }, "sandbox policy re-pointed at this server's gateway");
    }
  }

  /** The egress policy of the sandbox whose Pod has `ip` (null: none of this namespace's sandboxes). */
  private async policyOfPod(ip: string): Promise<NetworkPolicy | null> {
    const id = await this.pods.sandboxAt(ip);
    if (!id) return null;
    const known = this.policies.get(id);
    if (known) return known;
    // After a restart: the policy kept on the sandbox's NetworkPolicy.
    const kept = (await this.cluster.listPolicies(`${LABEL.sandbox}=${id}`))[0]?.metadata?.annotations?.[
      ANNOTATION.network
    ];
    if (!kept) return null;
    const policy = JSON.parse(kept) as NetworkPolicy;
    this.policies.set(id, policy);
    return policy;
  }
}
