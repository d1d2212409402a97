import { InvalidRequestError } from "./errors.js";

const CIDR = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/;
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Splits an allowlist into IPv4 CIDRs and hostnames; refuses what is neither. */
export function parseAllowlist(allow: string[]): { cidrs: string[]; hosts: string[] } {
  const cidrs: string[] = [];
  const hosts: string[] = [];
  for (const raw of allow) {
    const entry = raw.trim().toLowerCase();
    const m = CIDR.exec(entry);
    if (m) {
      const prefix = m[2] === undefined ? 32 : Number(m[2]);
      if (m[1]!.split(".").some((p) => Number(p) > 255) || prefix > 32)
        throw new InvalidRequestError(`network.allow: '${raw}' is not a valid IPv4 address or CIDR`, {
          field: "network.allow",
        });
      cidrs.push(`${m[1]}/${prefix}`);
    } else if (entry.length <= 253 && HOST.test(entry)) hosts.push(entry);
    else
      throw new InvalidRequestError(
        `network.allow: '${raw}' is not a hostname, '*.' wildcard, IPv4 address or CIDR (IPv6 is not supported)`,
        { field: "network.allow" },
      );
  }
  return { cidrs, hosts };
}

/** An `open` sandbox's deny list as normalized IPv4 CIDRs; refuses hostnames and anything else. */
export function parseDenylist(deny: string[]): string[] {
  const cidrs: string[] = [];
  for (const raw of deny) {
    const entry = raw.trim();
    const m = CIDR.exec(entry);
    const prefix = m?.[2] === undefined ? 32 : Number(m[2]);
    if (!m || m[1]!.split(".").some((p) => Number(p) > 255) || prefix > 32)
      throw new InvalidRequestError(
        `network.deny: '${raw}' is not an IPv4 address or CIDR (hostnames cannot be denied: use egress 'allowlist')`,
        { field: "network.deny" },
      );
    cidrs.push(`${m[1]}/${prefix}`);
  }
  return cidrs;
}

/** True when `name` is listed: exactly, or under a `*.` wildcard (which does not match the bare suffix). */
export function hostAllowed(name: string, hosts: string[]): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  return hosts.some((h) =>
    h.startsWith("*.") ? n.endsWith(h.slice(1)) && n.length > h.length - 1 : n === h,
  );
}

/**
 * Addresses no sandbox reaches by name, nor in `open` mode, unless a listed CIDR covers them:
 * this host and loopback, private and shared ranges (other sandboxes, the LAN, cloud VPCs),
 * link-local (169.254.169.254, the cloud metadata service), multicast and reserved.
 */
export const FORBIDDEN_V4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IPv4 address as a 32-bit number, or null when `ip` is not one. */
function ipv4Int(ip: string): number | null {
  const m = IPV4.exec(ip);
  if (!m) return null;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return null;
  return p.reduce((n, x) => n * 256 + x, 0);
}

/** True when IPv4 `ip` lies in `cidr` (`a.b.c.d/n`; a bare address is a /32); false for anything else. */
export function inCidr(ip: string, cidr: string): boolean {
  const [base = "", bits = "32"] = cidr.split("/");
  const a = ipv4Int(ip);
  const b = ipv4Int(base);
  const prefix = Number(bits);
  if (a === null || b === null || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return false;
  const size = 2 ** (32 - prefix);
  return Math.floor(a / size) === Math.floor(b / size);
}

/** True when two IPv4 CIDRs (or addresses) share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const base = (c: string) => c.split("/")[0] ?? "";
  return inCidr(base(a), b) || inCidr(base(b), a);
}
