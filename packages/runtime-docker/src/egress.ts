import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type EgressControl,
  type EgressMode,
  inCidr,
  type KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotSupportedError,
  type SandboxAddressing,
  SandboxError,
} from "@berth/core";
import { applyNft, hostResolver, hostResolvers } from "@berth/linux-host";
import { AllowlistEgress } from "./allowlist.js";
import { isNotFound } from "./engine.js";
import { bridgeRulesScript, forbiddenRanges, removeBridgeRulesScript } from "./firewall.js";
import { type ContainerJson, type DockerInstance, LABEL, SANDBOX_ID } from "./instance.js";

/** A bridge network's subnet and the host's address on it (learnt at start). */
interface Bridge {
  subnet: string;
  gateway: string | null;
}

/**
 * The Docker driver's networks and egress: `none` is NetworkMode none, `open` a bridge network
 * of this instance (filtered by nftables like the local driver's), `allowlist` a second bridge
 * where each sandbox's source address has its own rules (linux-host's resolver and proxy).
 * Also where sandboxes are: their address on their bridge and the host's address there.
 */
export class DockerEgress implements EgressControl, SandboxAddressing {
  private readonly addresses = new Map<string, string>();
  private bridge: Bridge | undefined;
  private allowBridge: Bridge | undefined;
  private filtered = false;
  /** `allowlist` egress, when nftables filters the bridges (else that mode answers 501). */
  private allowlist: AllowlistEgress | undefined;

  constructor(
    private readonly instance: DockerInstance,
    private readonly o: {
      lock: KeyedLock;
      hostPorts?: number[];
      dnsUpstream?: string;
      log: Logger;
    },
  ) {}

  get egressModes(): readonly EgressMode[] {
    return this.allowlist ? ["none", "open", "allowlist"] : ["none", "open"];
  }

  /** Whether `open` sandboxes are filtered (nftables rules on the bridge); known after `start`. */
  get filtersOpenEgress(): boolean {
    return this.filtered;
  }

  /** The Linux bridge of the allowlist network (at most 15 characters: `berth-<tag>a`). */
  private get allowlistBridge(): string {
    return `${this.instance.network}a`;
  }

  private get firewallTable(): string {
    return `berthd_${this.instance.tag}`;
  }

  /** Makes the instance's networks, writes their rules and registers running allowlisted sandboxes again. */
  async start(): Promise<void> {
    await this.ensureNetwork(this.instance.network, this.instance.network);
    await this.ensureNetwork(this.instance.allowlistNetwork, this.allowlistBridge);
    await this.startFirewall();
    await this.registerAllowlisted();
  }

  /** The Docker network a policy puts a container on; NotSupportedError for a mode this host lacks. */
  networkFor(policy: NetworkPolicy): string {
    if (policy.egress === "allowlist" && !this.allowlist)
      throw new NotSupportedError(
        "egress 'allowlist' on the docker driver needs nftables on the host (`nft`); this one enforces 'none' and 'open' only",
      );
    if (policy.egress === "open") return this.instance.network;
    if (policy.egress === "allowlist") return this.instance.allowlistNetwork;
    return "none";
  }

  /** The policy is kept beside the sandbox: the allowlist rules are written again from it after a restart. */
  writePolicy(id: string, policy: NetworkPolicy): void {
    const file = join(this.instance.paths(id).dir, "network.json");
    writeFileSync(`${file}.tmp`, JSON.stringify({ egress: policy.egress, allow: policy.allow }), {
      mode: 0o600,
    });
    renameSync(`${file}.tmp`, file);
  }

  /**
   * Records the container's address and, on the allowlist bridge, puts its rules in force for
   * that address (until then its packets are dropped there). Off that bridge, it has none.
   * `policy`: the one just set (else the one kept beside the sandbox).
   */
  async learnAddress(id: string, c: ContainerJson, policy?: NetworkPolicy): Promise<void> {
    const nets = c.NetworkSettings.Networks ?? {};
    const ip = Object.values(nets).find((n) => n.IPAddress)?.IPAddress;
    if (ip) this.addresses.set(id, ip);
    else this.addresses.delete(id);
    const allowIp = nets[this.instance.allowlistNetwork]?.IPAddress;
    if (allowIp && this.allowlist) await this.allowlist.register(id, allowIp, policy ?? this.readPolicy(id));
    else await this.allowlist?.unregister(id);
  }

  /** What `inspect` saw: a running container's address is learnt again; a stopped one gives up its rules. */
  async observe(id: string, c: ContainerJson): Promise<void> {
    // After a server restart this is where a sandbox's address is learnt again.
    const ip = Object.values(c.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
    if (ip && c.State.Running) this.addresses.set(id, ip);
    // A container that stopped on its own gives its address back: so do its rules.
    if (!c.State.Running && this.allowlist?.registered(id)) await this.allowlist.unregister(id);
  }

  /** The sandbox stopped or is gone: its address and rules go. */
  async forget(id: string): Promise<void> {
    this.addresses.delete(id);
    await this.allowlist?.unregister(id);
  }

  /**
   * Moves a container between `none`, the open bridge and the allowlist bridge, or rewrites its
   * allowlist rules (effective at once). On the allowlist bridge its rules are written before
   * this returns; until then that bridge drops its packets.
   */
  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    return this.o.lock.run(id, async () => {
      const want = this.networkFor(policy);
      const c = await this.instance.existing(id);
      this.writePolicy(id, policy);
      const have = Object.keys(c.NetworkSettings.Networks ?? {});
      const engine = this.instance.engine;
      for (const n of have)
        if (n !== want)
          await engine.json({
            method: "POST",
            path: `/networks/${n}/disconnect`,
            json: { Container: c.Id, Force: true },
          });
      if (!have.includes(want))
        await engine.json({ method: "POST", path: `/networks/${want}/connect`, json: { Container: c.Id } });
      const after = await this.instance.container(id);
      if (after) await this.learnAddress(id, after, policy);
    });
  }

  address(id: string): string | null {
    return this.addresses.get(id) ?? null;
  }

  /** Its traffic comes from its own address. */
  sourceAddress(id: string): string | null {
    return this.address(id);
  }

  /** The host's address on the bridge the sandbox is on (where it reaches the model gateway). */
  hostAddress(id: string): string | null {
    const ip = this.addresses.get(id);
    if (!ip) return null;
    const onBridge = [this.bridge, this.allowBridge].find((b) => b && inCidr(ip, b.subnet));
    return onBridge?.gateway ?? null;
  }

  sandboxCidrs(): string[] {
    return [this.bridge, this.allowBridge].flatMap((b) => (b ? [b.subnet] : []));
  }

  processEnv(_id: string): Record<string, string> {
    return {};
  }

  close(): void {
    this.allowlist?.close();
  }

  /** Removes this instance's networks and nftables tables (after every sandbox is gone). */
  async purge(): Promise<void> {
    for (const n of [this.instance.network, this.instance.allowlistNetwork])
      await this.instance.engine.json({ method: "DELETE", path: `/networks/${n}` }).catch(() => {});
    await applyNft(removeBridgeRulesScript(this.firewallTable), this.o.log).catch(() => {});
  }

  private readPolicy(id: string): NetworkPolicy {
    try {
      const file = join(this.instance.paths(id).dir, "network.json");
      const p = JSON.parse(readFileSync(file, "utf8")) as NetworkPolicy;
      if (p.egress === "allowlist" && Array.isArray(p.allow)) return { egress: p.egress, allow: p.allow };
    } catch {
      // no policy file: nothing is allowed
    }
    return { egress: "allowlist", allow: [] };
  }

  /** After the ruleset was written at start: the running containers on the allowlist bridge get their rules again. */
  private async registerAllowlisted(): Promise<void> {
    if (!this.allowlist) return;
    for (const entry of await this.instance.containers(true, this.instance.allowlistNetwork)) {
      const id = entry.Labels?.[LABEL.sandbox];
      if (!id || !SANDBOX_ID.test(id)) continue;
      const c = await this.instance.container(id);
      if (c?.State.Running && c.NetworkSettings.Networks?.[this.instance.allowlistNetwork])
        await this.learnAddress(id, c);
    }
  }

  private async ensureNetwork(name: string, bridge: string): Promise<void> {
    const engine = this.instance.engine;
    try {
      await engine.json({ method: "GET", path: `/networks/${name}` });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await engine.json({
        method: "POST",
        path: "/networks/create",
        json: {
          Name: name,
          Driver: "bridge",
          CheckDuplicate: true,
          Labels: { [LABEL.instance]: this.instance.tag },
          Options: {
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.name": bridge,
          },
        },
      });
    }
  }

  /**
   * Filters `open` sandboxes as the local driver does (no host but the given ports, no private,
   * link-local or reserved ranges, no other sandbox) with nftables on the instance's bridge.
   * Without `nft` on the host `open` is Docker's plain bridge, and the driver says so.
   */
  private async startFirewall(): Promise<void> {
    this.filtered = false;
    try {
      const open = await this.subnetOf(this.instance.network);
      this.bridge = open;
      this.allowBridge = await this.subnetOf(this.instance.allowlistNetwork);
      const allowSubnet = this.allowBridge.subnet;
      this.allowlist ??= new AllowlistEgress({
        table: this.firewallTable,
        upstream: this.o.dnsUpstream || hostResolver(),
        forbidden: forbiddenRanges([open.subnet, allowSubnet]),
        log: this.o.log,
      });
      const ports = await this.allowlist.start();
      await applyNft(
        bridgeRulesScript({
          table: this.firewallTable,
          bridge: this.instance.network,
          subnet: open.subnet,
          hostPorts: this.o.hostPorts ?? [],
          resolvers: hostResolvers(),
          allowlist: {
            bridge: this.allowlistBridge,
            subnet: allowSubnet,
            dnsPort: ports.dns,
            proxy: ports.proxy,
          },
        }),
        this.o.log,
      );
      this.allowlist.reset();
      // Allowed packets of allowlist sandboxes are routed by the host (Docker turns this on too).
      writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
      this.filtered = true;
    } catch (err) {
      this.allowlist?.close();
      this.allowlist = undefined;
      this.o.log.warn(
        { err: String(err) },
        "no nftables filtering of open sandboxes (they reach the host and private ranges), and no allowlist egress",
      );
    }
  }

  private async subnetOf(network: string): Promise<Bridge> {
    const n = await this.instance.engine.json<{
      IPAM: { Config: { Subnet?: string; Gateway?: string }[] | null };
    }>({ method: "GET", path: `/networks/${network}` });
    const v4 = n.IPAM.Config?.find((c) => c.Subnet?.includes("."));
    if (!v4?.Subnet) throw new SandboxError(`the bridge network ${network} has no IPv4 subnet`);
    return { subnet: v4.Subnet, gateway: v4.Gateway ?? null };
  }
}
