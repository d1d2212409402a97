import { networkInterfaces } from "node:os";
import { FORBIDDEN_V4, inCidr } from "./network-policy.js";

/** How long a read of the host's interfaces is trusted: addresses come and go (DHCP, VPNs, bridges). */
const FRESH_MS = 1_000;

/**
 * The host's own IPv4 addresses, on every interface, kept current: the list is read again when
 * it is older than a second (a netlink dump, some microseconds). Egress filters refuse them, so
 * an allowlisted name that resolves to the host cannot reach services that listen only there.
 */
export class HostAddresses {
  private addresses = new Set<string>();
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly read: () => string[] = interfaceAddresses) {}

  /** True when `ip` is one of this host's addresses now. */
  has(ip: string): boolean {
    if (Date.now() - this.readAt > FRESH_MS) {
      this.addresses = new Set(this.read());
      this.readAt = Date.now();
    }
    return this.addresses.has(ip);
  }
}

/** Every IPv4 address on the host's interfaces. */
function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === "IPv4")
    .map((a) => a?.address as string);
}

/**
 * Whether egress may go to `ip`: not the host, not a forbidden range (private, link-local,
 * loopback, reserved) nor one of `extraForbidden`, unless one of the sandbox's own `cidrs` lists
 * it explicitly (an operator's or admin's choice). The host's own addresses are never allowed.
 */
export function egressAddressAllowed(
  ip: string,
  o: { host: HostAddresses; cidrs: readonly string[]; extraForbidden?: readonly string[] },
): boolean {
  if (o.host.has(ip)) return false;
  if (o.cidrs.some((c) => inCidr(ip, c))) return true;
  return ![...FORBIDDEN_V4, ...(o.extraForbidden ?? [])].some((c) => inCidr(ip, c));
}
