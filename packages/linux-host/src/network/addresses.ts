import { SandboxError } from "@berth/core";

/** IPv4 text to a 32-bit number. */
export function ipToInt(ip: string): number {
  const p = ip.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
    throw new Error(`bad IPv4 '${ip}'`);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

/** A 32-bit number to IPv4 text. */
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The addresses of one sandbox: a /30 with the host's end (the gateway) and the sandbox's. */
export interface SlotAddress {
  index: number;
  hostIp: string;
  sandboxIp: string;
}

/**
 * The private range sandboxes get addresses from, cut into /30s (one per sandbox). Slot 0 is
 * kept back: its first address is the resolver the sandboxes are told to use.
 */
export class AddressRange {
  readonly base: number;
  readonly prefix: number;
  readonly cidr: string;

  constructor(cidr: string) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
    const prefix = m ? Number(m[2]) : -1;
    if (!m || prefix < 8 || prefix > 28)
      throw new SandboxError(`network range '${cidr}' must be an IPv4 /8../28`);
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    this.base = (ipToInt(m[1]!) & mask) >>> 0;
    this.prefix = prefix;
    this.cidr = `${intToIp(this.base)}/${prefix}`;
  }

  /** How many sandboxes fit. */
  get slots(): number {
    return 2 ** (32 - this.prefix) / 4 - 1;
  }

  /** The resolver address written into every sandbox's /etc/resolv.conf. */
  get resolverIp(): string {
    return intToIp(this.base + 1);
  }

  slot(index: number): SlotAddress {
    if (!Number.isInteger(index) || index < 1 || index > this.slots)
      throw new Error(`slot ${index} out of range`);
    const net = this.base + index * 4;
    return { index, hostIp: intToIp(net + 1), sandboxIp: intToIp(net + 2) };
  }
}
