import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type EgressControl,
  type EgressMode,
  type KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotFoundError,
  NotSupportedError,
  type SandboxAddressing,
  type SandboxSpec,
} from "@berth/core";
import {
  claimSandboxRange,
  hostResolver,
  onPath,
  RangeRegistry,
  type SandboxNet,
  SandboxNetworks,
  vethPrefixOf,
} from "@berth/linux-host";
import type { RuntimeLayout } from "./paths.js";
import { SANDBOX_ID, type SandboxRecords } from "./records.js";

/** The network settings of the local driver (see LinuxRuntimeOptions.network). */
export interface LinuxNetworkOptions {
  enabled: boolean;
  cidr?: string;
  dnsUpstream?: string;
  hostPorts?: number[];
}

/**
 * The local driver's sandbox networks: the address range claimed at start, a veth and an
 * nftables chain per sandbox (linux-host's SandboxNetworks), its egress policy and addresses.
 * Without `ip`/`nft` or with networks off, sandboxes get loopback only and egress `none`.
 */
export class LinuxEgress implements EgressControl, SandboxAddressing {
  private networks: SandboxNetworks | null = null;
  /** The sandboxes' address range, once claimed at start. */
  private cidr: string | null = null;

  constructor(
    private readonly o: {
      network?: LinuxNetworkOptions;
      dataDir: string;
      layout: RuntimeLayout;
      records: SandboxRecords;
      lock: KeyedLock;
      poolSize: number;
      log: Logger;
    },
  ) {}

  /** Egress modes this host can enforce (all three once sandbox networks are set up). */
  get egressModes(): readonly EgressMode[] {
    return this.networks ? ["none", "allowlist", "open"] : ["none"];
  }

  /** `open` sandboxes' deny lists are enforced by nftables, once sandbox networks are set up. */
  get egressDeny(): boolean {
    return this.networks !== null;
  }

  /** Whether sandboxes get networks on this host. */
  get enabled(): boolean {
    return this.networks !== null;
  }

  /** The resolver file sandboxes bind (null without networks). */
  get resolvConf(): string | null {
    return this.networks ? this.networks.resolvConf : null;
  }

  private get dir(): string {
    return join(this.o.layout.root, "net");
  }

  /**
   * Takes the sandboxes' address range when sandbox networks are on and the host has `ip` and
   * `nft`: checked against the host and other Berth servers, claimed host-wide. Before anything
   * is made on the host: a range that clashes refuses the start here.
   */
  async claimRange(): Promise<void> {
    if (!this.o.network?.enabled) return;
    if (!onPath("nft") || !onPath("ip")) {
      this.o.log.warn(
        {},
        "nft or ip is missing: sandboxes get loopback only (install nftables and iproute2)",
      );
      return;
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.cidr = await claimSandboxRange({
      configured: this.o.network.cidr,
      dir: this.dir,
      dataDir: this.o.dataDir,
      vethPrefix: vethPrefixOf(this.dir),
      hasSandboxes: this.o.records.ids().some((id) => this.o.records.net(id) !== null),
      log: this.o.log,
    });
    this.o.log.info({ cidr: this.cidr }, "sandbox network range");
  }

  /** Sets up sandbox networks in the range claimed at start (none claimed: loopback only). */
  async start(): Promise<void> {
    const n = this.o.network;
    if (!n?.enabled || !this.cidr) return;
    this.networks = new SandboxNetworks({
      dir: this.dir,
      cidr: this.cidr,
      dnsUpstream: n.dnsUpstream || hostResolver(),
      hostPorts: n.hostPorts,
      poolSize: this.o.poolSize,
      log: this.o.log,
    });
    const existing: { id: string; net: SandboxNet }[] = [];
    for (const id of this.o.records.ids()) {
      const net = this.o.records.net(id);
      if (net) existing.push({ id, net });
    }
    await this.networks.start(existing);
  }

  /** A new sandbox's network (recorded in `net.json` at once, so teardown finds it on any failure). */
  async attach(spec: SandboxSpec): Promise<{ netnsPath: string; resolvConf?: string } | undefined> {
    if (!this.networks) {
      if (spec.network.egress !== "none")
        throw new NotSupportedError(
          "this host has no sandbox networking (nftables/iproute2): only egress 'none'",
        );
      return undefined;
    }
    const net = await this.networks.attach(spec.id, spec.network);
    writeFileSync(this.o.layout.sandbox(spec.id).net, JSON.stringify(net), { mode: 0o600 });
    return { netnsPath: this.networks.path(net) };
  }

  /** Removes a sandbox's veth and rules, when it has them. */
  async detach(id: string): Promise<void> {
    const net = this.o.records.net(id);
    if (net && this.networks) await this.networks.detach(id, net);
  }

  /** Changes the egress policy of a running sandbox; effective for its next packet. */
  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    return this.o.lock.run(id, async () => {
      const net = SANDBOX_ID.test(id) ? this.o.records.net(id) : null;
      if (!net || !this.networks) {
        if (policy.egress === "none" && !this.networks) return;
        throw new NotFoundError("sandbox network", id);
      }
      const next = await this.networks.setPolicy(id, policy);
      writeFileSync(this.o.layout.sandbox(id).net, JSON.stringify(next), { mode: 0o600 });
    });
  }

  /** The sandbox's address on its network, if it has one (for direct connections from the host). */
  address(id: string): string | null {
    return (SANDBOX_ID.test(id) && this.o.records.net(id)?.sandboxIp) || null;
  }

  /** Its traffic comes from its own address. */
  sourceAddress(id: string): string | null {
    return this.address(id);
  }

  hostAddress(id: string): string | null {
    return (SANDBOX_ID.test(id) && this.o.records.net(id)?.hostIp) || null;
  }

  sandboxCidrs(): string[] {
    return this.cidr ? [this.cidr] : [];
  }

  processEnv(_id: string): Record<string, string> {
    return {};
  }

  /** Stops the resolver and proxy; with no sandbox left, removes the nftables table too. */
  async close(noSandboxLeft: boolean): Promise<void> {
    await this.networks?.close();
    // With no sandbox left nothing needs this server's nftables table; the next start makes it.
    if (noSandboxLeft && this.networks) await this.networks.removeTable();
    // Sandboxes left running keep their range visible on the host (their veths' routes).
    if (this.cidr) new RangeRegistry().release(this.o.dataDir);
  }

  /** Removes this instance's nftables table (after every sandbox is gone). */
  async purge(): Promise<void> {
    await this.networks?.removeTable();
  }
}
