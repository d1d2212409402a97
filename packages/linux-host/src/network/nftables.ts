/**
 * The nftables ruleset that enforces every sandbox's egress policy, in one table `inet berth`.
 * Pure functions that write `nft -f` scripts; each script is applied as one atomic transaction.
 *
 * - forward: a packet from a sandbox veth jumps, by interface, to that sandbox's chain (its
 *   policy); nothing may start a connection into a sandbox through forwarding (so sandboxes
 *   cannot reach each other); replies may come back.
 * - input: a sandbox may talk to the host only for DNS (redirected to Berth's resolver).
 * - prerouting: any DNS a sandbox sends (to any address) goes to Berth's resolver.
 * - postrouting: sandbox traffic leaving the host is masqueraded.
 */
import { FORBIDDEN_V4, type Logger, type NetworkPolicy, parseDenylist } from "@berth/core";
import { run } from "../command.js";

/** Applies an `nft -f` script as one transaction; CommandError (stderr attached) when nft refuses it. */
export async function applyNft(script: string, log?: Logger): Promise<void> {
  await run("nft", ["-f", "-"], { log, timeoutMs: 10_000, input: script });
}

/** What the base table needs to know. */
export interface BaseTableInput {
  /** `inet <name>`: one table per server instance, so several can share a host. */
  table: string;
  /** Host-side veth names of this instance start with it (matched as `<prefix>*`). */
  vethPrefix: string;
  sandboxCidr: string;
  dnsPort: number;
  /** Ports of the egress proxy that allowlist sandboxes' HTTP and TLS go through. */
  proxy: ProxyPorts;
  /** Host TCP ports every sandbox may reach whatever its egress policy (the model gateway). */
  hostPorts?: number[];
}

export interface ProxyPorts {
  http: number;
  tls: number;
}

/** One sandbox's rules: what its packets are known by, its policy, and its chain/set names. */
export interface SandboxRules {
  id: string;
  /**
   * Its key in the `egress` and `web` maps, as nft writes it: its veth name in quotes (`vethKey`)
   * here, its IPv4 address on a Docker bridge, whose maps are keyed by source address.
   */
  key: string;
  policy: NetworkPolicy;
  /** The IPv4 CIDRs of the allowlist (hostnames are handled by DNS). */
  cidrs: string[];
}

const chain = (id: string) => `sb_${id.replace(/-/g, "_")}`;
const webChain = (id: string) => `sbw_${id.replace(/-/g, "_")}`;
const cidrSet = (id: string) => `cidr_${id.replace(/-/g, "_")}`;
const denySet = (id: string) => `deny_${id.replace(/-/g, "_")}`;
export const dnsSet = (id: string): string => `dns_${id.replace(/-/g, "_")}`;
/** A veth name as a key of the interface-keyed maps. */
export const vethKey = (veth: string): string => `"${veth}"`;

/** The whole table, replacing any earlier one in the same transaction (no open window). */
export function baseTableScript(b: BaseTableInput, sandboxes: SandboxRules[]): string {
  // The host's own addresses need no entry: traffic to them is local (input chain), not forwarded.
  const forbidden = [...new Set([...FORBIDDEN_V4, b.sandboxCidr])];
  const { table } = b;
  const lines = [
    `table ${table}`,
    `delete table ${table}`,
    `table ${table} {`,
    `  set forbidden { type ipv4_addr; flags interval; auto-merge; elements = { ${forbidden.join(", ")} } }`,
    "  map egress { type ifname : verdict; }",
    "  map web { type ifname : verdict; }",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    `    iifname "${b.vethPrefix}*" meta l4proto { tcp, udp } th dport 53 redirect to :${b.dnsPort}`,
    `    iifname "${b.vethPrefix}*" iifname vmap @web`,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${b.sandboxCidr} oifname != "${b.vethPrefix}*" masquerade`,
    "  }",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    iifname "${b.vethPrefix}*" ct state established,related accept`,
    `    iifname "${b.vethPrefix}*" udp dport ${b.dnsPort} accept`,
    `    iifname "${b.vethPrefix}*" tcp dport { ${[b.proxy.http, b.proxy.tls, ...(b.hostPorts ?? [])].join(", ")} } accept`,
    `    iifname "${b.vethPrefix}*" drop`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    `    oifname "${b.vethPrefix}*" ct state established,related accept`,
    `    oifname "${b.vethPrefix}*" drop`,
    `    iifname "${b.vethPrefix}*" iifname vmap @egress`,
    `    iifname "${b.vethPrefix}*" drop`,
    "  }",
    "}",
  ];
  return `${lines.join("\n")}\n${sandboxes.map((s) => sandboxScript(table, s, true, b.proxy)).join("")}`;
}

/**
 * A sandbox's chain and sets, (re)written atomically. `fresh`: also map its veth to the chain
 * (the first time); a policy change rewrites only the chain and sets.
 */
export function sandboxScript(table: string, s: SandboxRules, fresh: boolean, proxy: ProxyPorts): string {
  const c = chain(s.id);
  const w = webChain(s.id);
  const lines = [
    `add chain ${table} ${c}`,
    `flush chain ${table} ${c}`,
    `add chain ${table} ${w}`,
    `flush chain ${table} ${w}`,
    `add set ${table} ${cidrSet(s.id)} { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${table} ${cidrSet(s.id)}`,
    `add set ${table} ${dnsSet(s.id)} { type ipv4_addr; flags timeout; }`,
    `flush set ${table} ${dnsSet(s.id)}`,
    `add set ${table} ${denySet(s.id)} { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${table} ${denySet(s.id)}`,
  ];
  const egress = s.policy.egress;
  // Listed CIDRs first: an explicit allow wins over the deny list (as E2B's allowOut does).
  if (egress !== "none" && s.cidrs.length > 0) {
    lines.push(`add element ${table} ${cidrSet(s.id)} { ${s.cidrs.join(", ")} }`);
    lines.push(`add rule ${table} ${c} ip daddr @${cidrSet(s.id)} accept`);
  }
  if (egress !== "none") lines.push(`add rule ${table} ${c} ip daddr @forbidden drop`);
  const deny = egress === "open" ? parseDenylist(s.policy.deny ?? []) : [];
  if (deny.length > 0) {
    lines.push(`add element ${table} ${denySet(s.id)} { ${deny.join(", ")} }`);
    lines.push(`add rule ${table} ${c} ip daddr @${denySet(s.id)} drop`);
  }
  if (egress === "allowlist") lines.push(`add rule ${table} ${c} ip daddr @${dnsSet(s.id)} accept`);
  if (egress === "open") lines.push(`add rule ${table} ${c} meta nfproto ipv4 accept`);
  lines.push(`add rule ${table} ${c} drop`);
  if (egress === "allowlist") {
    // Web traffic goes through the egress proxy, which checks Host/SNI (not for listed CIDRs).
    if (s.cidrs.length > 0) lines.push(`add rule ${table} ${w} ip daddr @${cidrSet(s.id)} return`);
    lines.push(`add rule ${table} ${w} tcp dport 80 redirect to :${proxy.http}`);
    lines.push(`add rule ${table} ${w} tcp dport 443 redirect to :${proxy.tls}`);
  }
  if (fresh) {
    lines.push(`add element ${table} egress { ${s.key} : jump ${c} }`);
    lines.push(`add element ${table} web { ${s.key} : jump ${w} }`);
  }
  return `${lines.join("\n")}\n`;
}

/** Drops a sandbox's key from the `egress` and `web` maps (its chains stay, unreferenced). */
export function unmapScript(table: string, key: string): string {
  return `delete element ${table} egress { ${key} }\ndelete element ${table} web { ${key} }\n`;
}

/** Removes a sandbox's rules (its map keys first, so the chains are unreferenced). */
export function removeSandboxScript(table: string, id: string, key: string): string {
  return [
    unmapScript(table, key).trimEnd(),
    `delete chain ${table} ${chain(id)}`,
    `delete chain ${table} ${webChain(id)}`,
    `delete set ${table} ${cidrSet(id)}`,
    `delete set ${table} ${dnsSet(id)}`,
    `delete set ${table} ${denySet(id)}`,
    "",
  ].join("\n");
}

/** Lets a sandbox reach addresses its resolver just answered for an allowed name. */
export function allowResolvedScript(table: string, id: string, ips: string[], ttlSeconds: number): string {
  return `add element ${table} ${dnsSet(id)} { ${ips.map((ip) => `${ip} timeout ${ttlSeconds}s`).join(", ")} }\n`;
}
