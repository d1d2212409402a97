import { FORBIDDEN_V4 } from "@berth/core";

/** What the bridge's rules need. */
export interface BridgeRules {
  /** nftables table name (`berthd_<hash>`), one per Berth instance. */
  table: string;
  /** The Linux bridge of the instance's Docker network. */
  bridge: string;
  /** Its IPv4 subnet (frames between two addresses in it are sandbox-to-sandbox). */
  subnet: string;
  /** Host TCP ports sandboxes may reach on the host (the model gateway). */
  hostPorts: number[];
  /** The resolvers Docker's embedded DNS forwards to (allowed on port 53 even in private ranges). */
  resolvers: string[];
  /** The bridge of `allowlist` sandboxes, filtered per sandbox by source address. */
  allowlist?: AllowlistBridge;
}

/**
 * The second bridge, for `allowlist` sandboxes. Every packet from it is dropped unless its
 * source address is in the `egress` map (a sandbox's chain, as on the local driver); all DNS
 * from it goes to Berth's resolver and web traffic (per the `web` map) to the egress proxy.
 * So a container whose address is not registered yet reaches nothing.
 */
export interface AllowlistBridge {
  bridge: string;
  subnet: string;
  /** Berth's DNS resolver's UDP port on the host. */
  dnsPort: number;
  proxy: { http: number; tls: number };
}

/**
 * The nftables ruleset of an instance's bridge, replacing any earlier one atomically:
 * - bridge family: no packet bridged from one sandbox to another (Docker's `enable_icc=false` is
 *   an iptables rule, absent when the engine runs without iptables);
 * - input: from the bridge only replies and the allowed host ports reach the host;
 * - forward: from the bridge nothing reaches the forbidden ranges but DNS to the resolvers.
 */
export function bridgeRulesScript(r: BridgeRules): string {
  const br = `"${r.bridge}"`;
  const a = r.allowlist;
  const ab = a ? `"${a.bridge}"` : "";
  const lines = [
    `table inet ${r.table}`,
    `delete table inet ${r.table}`,
    `table bridge ${r.table}`,
    `delete table bridge ${r.table}`,
    `table bridge ${r.table} {`,
    "  chain forward {",
    "    type filter hook forward priority -1; policy accept;",
    `    ip saddr ${r.subnet} ip daddr ${r.subnet} drop`,
    ...(a ? [`    ip saddr ${a.subnet} ip daddr ${a.subnet} drop`] : []),
    "  }",
    "}",
    `table inet ${r.table} {`,
    `  set forbidden { type ipv4_addr; flags interval; auto-merge; elements = { ${forbiddenRanges([r.subnet, ...(a ? [a.subnet] : [])]).join(", ")} } }`,
    ...(a
      ? [
          "  map egress { type ipv4_addr : verdict; }",
          "  map web { type ipv4_addr : verdict; }",
          "  chain prerouting {",
          "    type nat hook prerouting priority dstnat; policy accept;",
          `    iifname ${ab} meta l4proto { tcp, udp } th dport 53 redirect to :${a.dnsPort}`,
          `    iifname ${ab} ip saddr vmap @web`,
          "  }",
        ]
      : []),
    "  chain input {",
    "    type filter hook input priority -1; policy accept;",
    `    iifname ${br} ct state established,related accept`,
    ...(r.hostPorts.length > 0 ? [`    iifname ${br} tcp dport { ${r.hostPorts.join(", ")} } accept`] : []),
    `    iifname ${br} drop`,
    ...(a
      ? [
          `    iifname ${ab} ct state established,related accept`,
          `    iifname ${ab} udp dport ${a.dnsPort} accept`,
          `    iifname ${ab} tcp dport { ${[a.proxy.http, a.proxy.tls, ...r.hostPorts].join(", ")} } accept`,
          `    iifname ${ab} drop`,
        ]
      : []),
    "  }",
    "  chain forward {",
    "    type filter hook forward priority -1; policy accept;",
    `    iifname ${br} ct state established,related accept`,
    ...(r.resolvers.length > 0
      ? [
          `    iifname ${br} ip daddr { ${r.resolvers.join(", ")} } meta l4proto { tcp, udp } th dport 53 accept`,
        ]
      : []),
    `    iifname ${br} ip daddr @forbidden drop`,
    ...(a
      ? [
          `    iifname ${ab} ct state established,related accept`,
          `    iifname ${ab} ip saddr vmap @egress`,
          `    iifname ${ab} drop`,
        ]
      : []),
    "  }",
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** What no sandbox may reach unless its allowlist names it: private and reserved ranges, and the bridges' subnets. */
export function forbiddenRanges(bridgeSubnets: string[]): string[] {
  return [...new Set([...FORBIDDEN_V4, ...bridgeSubnets])];
}

/** Removes an instance's tables (both families). */
export function removeBridgeRulesScript(table: string): string {
  return `table inet ${table}\ndelete table inet ${table}\ntable bridge ${table}\ndelete table bridge ${table}\n`;
}
