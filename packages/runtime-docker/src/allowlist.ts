import { type Logger, type NetworkPolicy, parseAllowlist } from "@berth/core";
import {
  allowResolvedScript,
  applyNft,
  type DnsClient,
  DnsResolver,
  EgressProxy,
  type ProxyPorts,
  removeSandboxScript,
  sandboxScript,
  unmapScript,
} from "@berth/linux-host";

export interface AllowlistEgressOptions {
  /** The instance's nftables table (`inet` family), whose base rules `bridgeRulesScript` writes. */
  table: string;
  /** Upstream resolver, `ip[:port]`. */
  upstream: string;
  /** Destinations a listed name may never resolve to (unless a CIDR of the sandbox allows it). */
  forbidden: string[];
  log?: Logger;
}

type Client = DnsClient;

/**
 * `allowlist` egress on the Docker bridge, with the local driver's parts: Berth's DNS resolver
 * (only listed names resolve, and their answers open the sandbox's address set) and the egress
 * proxy (HTTP Host / TLS SNI checked against the list). Sandboxes are told apart by their
 * source address on the allowlist bridge, so each one is registered here once its container
 * has an address, and before anything but berth-init runs in it.
 */
export class AllowlistEgress {
  private readonly byIp = new Map<string, Client>();
  private readonly ipOf = new Map<string, string>();
  private readonly dns: DnsResolver;
  private readonly proxy: EgressProxy;
  private ports: { dns: number; proxy: ProxyPorts } | undefined;

  constructor(private readonly o: AllowlistEgressOptions) {
    this.dns = new DnsResolver({
      upstream: o.upstream,
      clientFor: (ip) => this.byIp.get(ip),
      allow: (id, ips, ttl) => applyNft(allowResolvedScript(this.table, id, ips, ttl), o.log),
      forbidden: o.forbidden,
      log: o.log,
    });
    this.proxy = new EgressProxy({
      clientFor: (ip) => this.byIp.get(ip),
      forbidden: o.forbidden,
      upstream: o.upstream,
      log: o.log,
    });
  }

  /** Starts the resolver and the proxy; resolves with their host ports (for the base rules). */
  async start(): Promise<{ dns: number; proxy: ProxyPorts }> {
    if (!this.ports) this.ports = { dns: await this.dns.start(0), proxy: await this.proxy.start() };
    return this.ports;
  }

  /**
   * The base table was (re)written: it holds no sandbox now. Forgets every registration, so
   * the next `register` of each writes its chain afresh.
   */
  reset(): void {
    this.byIp.clear();
    this.ipOf.clear();
  }

  /**
   * Puts `policy` in force for the sandbox at `ip`, in one transaction: its chain and sets,
   * keyed by that address. A stale registration of the same address (a container that died
   * unnoticed) or of the sandbox's earlier address is dropped in the same transaction.
   */
  async register(id: string, ip: string, policy: NetworkPolicy): Promise<void> {
    if (!this.ports) throw new Error("allowlist egress is not started");
    const { hosts, cidrs } = parseAllowlist(policy.allow);
    const lines: string[] = [];
    const stale = this.byIp.get(ip);
    if (stale && stale.id !== id) lines.push(removeSandboxScript(this.table, stale.id, ip));
    const old = this.ipOf.get(id);
    if (old && old !== ip) lines.push(unmapScript(this.table, old));
    lines.push(sandboxScript(this.table, { id, key: ip, policy, cidrs }, old !== ip, this.ports.proxy));
    await applyNft(lines.join(""), this.o.log);
    if (stale && stale.id !== id) this.ipOf.delete(stale.id);
    if (old && old !== ip) this.byIp.delete(old);
    this.byIp.set(ip, { id, egress: policy.egress, hosts, cidrs });
    this.ipOf.set(id, ip);
  }

  /** Removes a sandbox's chain and sets (it left the bridge, stopped or is gone). */
  async unregister(id: string): Promise<void> {
    const ip = this.ipOf.get(id);
    if (!ip) return;
    this.ipOf.delete(id);
    this.byIp.delete(ip);
    await applyNft(removeSandboxScript(this.table, id, ip), this.o.log).catch((err) =>
      this.o.log?.warn({ id, err: String(err) }, "allowlist rules not removed"),
    );
  }

  /** Whether a sandbox has rules here (tests, diagnostics). */
  registered(id: string): boolean {
    return this.ipOf.has(id);
  }

  close(): void {
    this.dns.close();
    this.proxy.close();
    this.ports = undefined;
  }

  private get table(): string {
    return `inet ${this.o.table}`;
  }
}
