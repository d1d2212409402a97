/**
 * IPv4 ranges for tests that make networks on this host (sandbox ranges of test servers, test
 * dockerd address pools, the "outside" servers' links). Test files run in parallel, other
 * checkouts may run their tests at the same time, and a developer's `npm start` server may be
 * serving beside them: a range is handed out only if nothing on the host uses it (addresses,
 * routes, a Berth or Docker nftables table that masquerades it, a Berth server's entry in
 * /run/berth/networks) and no other test process holds it. Holds are files under /tmp/berth-test-ranges, created with
 * O_EXCL and naming the owner's pid; a dead owner's hold is taken over.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inCidr } from "@berth/core";

const HOLDS = "/tmp/berth-test-ranges";
/** Where Berth servers note the sandbox ranges they hold (packages/runtime-linux's range registry). */
const SERVER_REGISTRY = "/run/berth/networks";

/** Where each kind of range comes from (areas do not overlap, so holds of one size never meet another's). */
const AREAS = {
  /**
   * A test server's or runtime's sandbox addresses (`BERTH_NETWORK_CIDR`): a /22 of 10.128.0.0/10,
   * clear of the /16s a server without that setting picks from (10.200-254, 172.16-31).
   */
  sandboxes: { base: "10.128.0.0", bits: 10, prefix: 22 },
  /** A test dockerd's `--default-address-pool` (its networks take /24s of it): a /16 of 10.64.0.0/11. */
  dockerPool: { base: "10.64.0.0", bits: 11, prefix: 16 },
  /** An outside server's link and address: a /24 of 198.18.0.0/16 (the benchmarking range). */
  outside: { base: "198.18.0.0", bits: 16, prefix: 24 },
} as const;

export type RangeKind = keyof typeof AREAS;

/** A range this test process holds until `release()`. */
export interface RangeHold {
  cidr: string;
  /** The range's first address plus `n` (e.g. `host(1)` for a /30's host end). */
  host(n: number): string;
  release(): void;
}

/** Holds a free range of `kind`; throws, naming what it found in use, when none is left after many tries. */
export function holdRange(kind: RangeKind): RangeHold {
  const area = AREAS[kind];
  mkdirSync(HOLDS, { recursive: true, mode: 0o700 });
  const used = rangesInUse();
  const count = 2 ** (area.prefix - area.bits);
  const size = 2 ** (32 - area.prefix);
  for (let i = 0; i < 400; i++) {
    const first = toInt(area.base) + Math.floor(Math.random() * count) * size;
    const cidr = `${toIp(first)}/${area.prefix}`;
    if (used.some((u) => overlaps(u, cidr))) continue;
    const hold = tryHold(cidr);
    if (hold) return hold;
  }
  throw new Error(
    `no free ${kind} range (/${area.prefix} of ${area.base}/${area.bits}); in use: ${used.join(", ")}`,
  );
}

/** Holds exactly `cidr` against other test processes (not checked against the host); null when a live process holds it. */
export function tryHold(cidr: string): RangeHold | null {
  mkdirSync(HOLDS, { recursive: true, mode: 0o700 });
  const file = join(HOLDS, cidr.replace("/", "_"));
  if (!take(file)) return null;
  const first = toInt(cidr.split("/")[0] as string);
  return {
    cidr,
    host: (n) => toIp(first + n),
    release: () => {
      if (ownerOf(file) === process.pid) rmSync(file, { force: true });
    },
  };
}

/** Creates the hold file, or takes it over from an owner that is gone; false when a live process holds it. */
function take(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = ownerOf(file);
      if (owner !== null && alive(owner)) return false;
      // Its owner died without releasing it (a killed test run): the hold is stale.
      rmSync(file, { force: true });
    }
  }
  return false;
}

function ownerOf(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * IPv4 ranges something on this host uses now: its addresses and routes (every table), the
 * ranges nftables rules name as a source (a Berth server masquerades its whole sandbox range
 * even before it has a sandbox), and the ranges Berth servers note in their host-wide registry.
 */
export function rangesInUse(): string[] {
  const out = new Set<string>();
  for (const name of safeReaddir(SERVER_REGISTRY)) {
    try {
      const claim = JSON.parse(readFileSync(join(SERVER_REGISTRY, name), "utf8")) as { cidr?: unknown };
      if (typeof claim.cidr === "string" && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(claim.cidr)) out.add(claim.cidr);
    } catch {
      // being replaced, or not a claim
    }
  }
  const cmd = (argv: string[]) => {
    try {
      return execFileSync(argv[0] as string, argv.slice(1), {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
    } catch {
      return "";
    }
  };
  for (const m of cmd(["ip", "-4", "-o", "addr", "show"]).matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g))
    out.add(network(m[1] as string));
  for (const line of cmd(["ip", "-4", "route", "show", "table", "all"]).split("\n")) {
    const words = line.trim().split(/\s+/);
    const dest =
      /^(unicast|local|broadcast|multicast|blackhole|unreachable|prohibit|throw|nat|anycast)$/.test(
        words[0] ?? "",
      )
        ? words[1]
        : words[0];
    if (dest && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest))
      out.add(network(dest.includes("/") ? dest : `${dest}/32`));
  }
  // Rules over a whole private block (the firewalls' "forbidden" ranges) are policy, not a range in use.
  for (const m of cmd(["nft", "list", "ruleset"]).matchAll(/ip saddr (\d+\.\d+\.\d+\.\d+\/\d+)/g))
    if (Number((m[1] as string).split("/")[1]) >= 12) out.add(m[1] as string);
  return [...out];
}

/** Whether two CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
  const [na, pa] = a.split("/") as [string, string];
  const [nb, pb] = b.split("/") as [string, string];
  return Number(pa) <= Number(pb) ? inCidr(nb, a) : inCidr(na, b);
}

/** A CIDR with its host bits cleared. */
function network(cidr: string): string {
  const [ip, p] = cidr.split("/") as [string, string];
  const bits = Number(p);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return `${toIp((toInt(ip) & mask) >>> 0)}/${bits}`;
}

const toInt = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
}
