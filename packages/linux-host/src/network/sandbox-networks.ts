import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  FORBIDDEN_V4,
  type Logger,
  type NetworkPolicy,
  NotSupportedError,
  parseAllowlist,
} from "@berth/core";
import { AddressRange } from "./addresses.js";
import { type DnsClient, DnsResolver } from "./dns-resolver.js";
import { EgressProxy } from "./egress-proxy.js";
import { createNetSlot, deleteNetSlot, type NetSlot, netnsPath } from "./netns.js";
import {
  allowResolvedScript,
  applyNft,
  baseTableScript,
  type ProxyPorts,
  removeSandboxScript,
  type SandboxRules,
  sandboxScript,
  vethKey,
} from "./nftables.js";

/** What a sandbox's network is, recorded beside it (`net.json`) to find it again after a restart. */
export interface SandboxNet {
  netns: string;
  veth: string;
  index: number;
  hostIp: string;
  sandboxIp: string;
  policy: NetworkPolicy;
}

export interface SandboxNetworksOptions {
  /** Where the resolver file lives; its hash names this instance's table and veths. */
  dir: string;
  cidr: string;
  dnsUpstream: string;
  /** Host TCP ports every sandbox may reach (the model gateway). */
  hostPorts?: number[];
  poolSize: number;
  log?: Logger;
}

/** Names this instance's table and veths apart from other servers' on the host. */
function instanceTag(dir: string): string {
  return createHash("sha256").update(dir).digest("hex").slice(0, 4);
}

/** The prefix of the host-side veth names of the instance whose network dir is `dir`. */
export function vethPrefixOf(dir: string): string {
  return `b${instanceTag(dir)}`;
}

/** After a create, how long the pool waits before refilling (bursts go first). */
const QUIET_MS = 150;

/**
 * Every sandbox's network on this host: a network namespace whose eth0 is a veth to the host,
 * an address from the configured range, Berth's DNS resolver, and nftables rules for its egress
 * policy. Namespaces are prepared ahead in a small pool, so a create only takes one and writes
 * its rules. Several servers can share a host: each has its own table, veth prefix and range.
 */
export class SandboxNetworks {
  private readonly range: AddressRange;
  private readonly table: string;
  private readonly vethPrefix: string;
  private readonly used = new Set<number>();
  private readonly ready: NetSlot[] = [];
  private readonly nets = new Map<string, SandboxNet>();
  private readonly byIp = new Map<string, DnsClient>();
  private readonly dns: DnsResolver;
  private readonly proxy: EgressProxy;
  private proxyPorts: ProxyPorts = { http: 0, tls: 0 };
  private dnsPort = 0;
  private filling: Promise<void> | null = null;
  private quietAfter = 0;
  private closed = false;
  readonly resolvConf: string;

  constructor(private readonly o: SandboxNetworksOptions) {
    this.range = new AddressRange(o.cidr);
    const tag = instanceTag(o.dir);
    this.table = `inet berth_${tag}`;
    this.vethPrefix = vethPrefixOf(o.dir);
    this.resolvConf = join(o.dir, "resolv.conf");
    this.dns = new DnsResolver({
      upstream: o.dnsUpstream,
      clientFor: (ip) => this.byIp.get(ip),
      allow: (id, ips, ttl) => this.nft(allowResolvedScript(this.table, id, ips, ttl)),
      forbidden: [this.range.cidr],
      log: o.log,
    });
    this.proxy = new EgressProxy({
      clientFor: (ip) => this.byIp.get(ip),
      forbidden: [...FORBIDDEN_V4, this.range.cidr],
      upstream: o.dnsUpstream,
      log: o.log,
    });
  }

  /**
   * Starts the resolver and (re)writes the whole ruleset for the sandboxes that exist (from
   * their `net.json`), in one transaction; drops pool namespaces of an earlier run.
   */
  async start(existing: { id: string; net: SandboxNet }[]): Promise<void> {
    writeFileSync(this.resolvConf, `nameserver ${this.range.resolverIp}\noptions timeout:2 attempts:2\n`, {
      mode: 0o644,
    });
    // Forwarding is what lets `open` and `allowlist` sandboxes out; our rules decide who may.
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    for (const { id, net } of existing) this.remember(id, net);
    const keep = new Set(existing.map((e) => e.net.netns));
    for (const name of existsSync("/run/netns") ? readdirSync("/run/netns") : [])
      if (name.startsWith(`${this.vethPrefix}n`) && !keep.has(name))
        await deleteNetSlot(
          { netns: name, veth: `${this.vethPrefix}${name.slice(this.vethPrefix.length + 1)}` },
          this.o,
        );
    this.dnsPort = await this.dns.start(0);
    this.proxyPorts = await this.proxy.start();
    await this.nft(
      baseTableScript(
        {
          table: this.table,
          vethPrefix: this.vethPrefix,
          sandboxCidr: this.range.cidr,
          dnsPort: this.dnsPort,
          proxy: this.proxyPorts,
          hostPorts: this.o.hostPorts,
        },
        [...this.nets.entries()].map(([id, n]) => this.rules(id, n)),
      ),
    );
    this.refill();
  }

  /** Gives a new sandbox its network with `policy` in force before anything runs in it. */
  async attach(id: string, policy: NetworkPolicy): Promise<SandboxNet> {
    const parsed = parseAllowlist(policy.allow);
    let slot = this.ready.shift();
    this.quietAfter = Date.now() + QUIET_MS;
    if (!slot) {
      slot = this.newSlot();
      await createNetSlot(slot, this.o);
    }
    const net: SandboxNet = {
      netns: slot.netns,
      veth: slot.veth,
      index: slot.address.index,
      hostIp: slot.address.hostIp,
      sandboxIp: slot.address.sandboxIp,
      policy,
    };
    try {
      await this.nft(
        sandboxScript(
          this.table,
          { id, key: vethKey(net.veth), policy, cidrs: parsed.cidrs },
          true,
          this.proxyPorts,
        ),
      );
    } catch (err) {
      await deleteNetSlot(slot, this.o);
      this.used.delete(slot.address.index);
      throw err;
    }
    this.remember(id, net);
    setImmediate(() => this.refill());
    return net;
  }

  /** Changes a running sandbox's policy (rules rewritten atomically; resolved names forgotten). */
  async setPolicy(id: string, policy: NetworkPolicy): Promise<SandboxNet> {
    const net = this.nets.get(id);
    if (!net) throw new NotSupportedError("this sandbox has no network of its own");
    const { cidrs } = parseAllowlist(policy.allow);
    await this.nft(
      sandboxScript(this.table, { id, key: vethKey(net.veth), policy, cidrs }, false, this.proxyPorts),
    );
    const next = { ...net, policy };
    this.remember(id, next);
    return next;
  }

  /** Removes a sandbox's rules, veth and namespace; its address is free again. */
  async detach(id: string, net: SandboxNet): Promise<void> {
    await this.nft(removeSandboxScript(this.table, id, vethKey(net.veth))).catch(() => {});
    await deleteNetSlot(net, this.o);
    this.nets.delete(id);
    this.byIp.delete(net.sandboxIp);
    this.used.delete(net.index);
  }

  /** The netns path to give runc. */
  path(net: SandboxNet): string {
    return netnsPath(net.netns);
  }

  /** Stops the resolver and drops the pool (sandboxes keep their networks and rules). */
  async close(): Promise<void> {
    this.closed = true;
    await this.filling?.catch(() => {});
    this.dns.close();
    this.proxy.close();
    for (const slot of this.ready.splice(0)) {
      await deleteNetSlot(slot, this.o);
      this.used.delete(slot.address.index);
    }
  }

  /** Removes this instance's table (tests and uninstall). */
  async removeTable(): Promise<void> {
    await this.nft(`table ${this.table}\ndelete table ${this.table}\n`).catch(() => {});
  }

  private remember(id: string, net: SandboxNet): void {
    this.nets.set(id, net);
    this.used.add(net.index);
    const { hosts, cidrs } = parseAllowlist(net.policy.allow);
    this.byIp.set(net.sandboxIp, { id, egress: net.policy.egress, hosts, cidrs });
  }

  private rules(id: string, net: SandboxNet): SandboxRules {
    return { id, key: vethKey(net.veth), policy: net.policy, cidrs: parseAllowlist(net.policy.allow).cidrs };
  }

  private newSlot(): NetSlot {
    let index = 1;
    while (this.used.has(index)) index++;
    if (index > this.range.slots)
      throw new NotSupportedError(`the network range ${this.range.cidr} has no free addresses left`);
    this.used.add(index);
    const tag = randomBytes(4).toString("hex");
    return {
      netns: `${this.vethPrefix}n${tag}`,
      veth: `${this.vethPrefix}${tag}`,
      address: this.range.slot(index),
    };
  }

  private refill(): void {
    if (this.filling || this.closed || this.ready.length >= this.o.poolSize) return;
    this.filling = (async () => {
      while (!this.closed && this.ready.length < this.o.poolSize) {
        while (!this.closed && this.ready.length > 0 && Date.now() < this.quietAfter)
          await new Promise((r) => setTimeout(r, this.quietAfter - Date.now()));
        if (this.closed) break;
        const slot = this.newSlot();
        try {
          await createNetSlot(slot, this.o);
          this.ready.push(slot);
        } catch (err) {
          this.used.delete(slot.address.index);
          this.o.log?.warn({ err: String(err) }, "network pool: could not prepare a namespace");
          return;
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }

  private async nft(script: string): Promise<void> {
    await applyNft(script, this.o.log);
  }
}
