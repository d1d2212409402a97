import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, cidrsOverlap, type Logger, SETTINGS } from "@berth/core";
import { run } from "../command.js";
import { AddressRange } from "./addresses.js";
import { RangeRegistry } from "./range-registry.js";

/** The file in the network dir that keeps a picked range across restarts. */
export const REMEMBERED = "cidr";
/** Where an automatic range is looked for, in order: 10.231/16 (the old default) first. */
const CANDIDATES = [
  ...Array.from({ length: 24 }, (_, i) => `10.${231 + i}.0.0/16`),
  ...Array.from({ length: 31 }, (_, i) => `10.${200 + i}.0.0/16`),
  ...Array.from({ length: 16 }, (_, i) => `172.${16 + i}.0.0/16`),
];
const SETTING = SETTINGS.networkCidr.env;

/** Something on this host that already uses addresses: an interface's subnet, a route, a server. */
interface InUse {
  cidr: string;
  what: string;
}

export interface SandboxRangeOptions {
  /** BERTH_NETWORK_CIDR; undefined: the remembered range, else a free /16. */
  configured?: string;
  /** The runtime's network dir (the remembered range lives here). */
  dir: string;
  /** The data dir: the registry knows this server by it. */
  dataDir: string;
  /** This instance's veth names start with it: its own sandboxes' routes are no conflict. */
  vethPrefix: string;
  /** Whether sandboxes of an earlier run exist (their addresses come from the remembered range). */
  hasSandboxes: boolean;
  registry?: RangeRegistry;
  log?: Logger;
}

/**
 * The range this server's sandboxes take their addresses from, checked against the host's
 * interfaces and routes and the ranges of other Berth servers on this host, and claimed in the
 * host-wide registry. A configured range that overlaps is refused with a message naming the
 * range, what it overlaps and the setting; without one, a range picked earlier is kept (its
 * sandboxes keep working) and otherwise the first free /16 is picked and remembered.
 */
export async function claimSandboxRange(o: SandboxRangeOptions): Promise<string> {
  const registry = o.registry ?? new RangeRegistry();
  return registry.locked(async () => {
    const inUse = [...(await hostRanges(o.vethPrefix, o.log)), ...othersOf(registry, o.dataDir)];
    const clash = (cidr: string) => inUse.find((u) => cidrsOverlap(cidr, u.cidr));
    let cidr: string;
    if (o.configured !== undefined) {
      cidr = new AddressRange(o.configured).cidr;
      const c = clash(cidr);
      if (c)
        throw new ConfigError(
          `the sandbox network ${cidr} (${SETTING}) overlaps ${c.cidr}, ${c.what}: set ${SETTING} to a free private range, or unset it to have a free /16 picked`,
        );
    } else {
      const file = join(o.dir, REMEMBERED);
      const remembered = existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
      // Sandboxes of a server from before ranges were remembered have addresses of the old default.
      const kept = remembered ?? (o.hasSandboxes ? CANDIDATES[0] : undefined);
      const c = kept && clash(kept);
      if (kept && c && o.hasSandboxes)
        throw new ConfigError(
          `the sandbox network ${kept} (picked earlier, kept in ${file} while this server has sandboxes) now overlaps ${c.cidr}, ${c.what}: remove what overlaps, or delete this server's sandboxes and the file so a free range is picked (or set ${SETTING})`,
        );
      if (kept && !c) cidr = kept;
      else {
        const free = CANDIDATES.find((x) => !clash(x));
        if (!free)
          throw new ConfigError(
            `no free /16 for sandbox networks among 10.200-254.0.0 and 172.16-31.0.0: set ${SETTING} to a free private range`,
          );
        cidr = free;
        if (kept)
          o.log?.warn({ was: kept, now: cidr, overlaps: c }, "the remembered sandbox range is taken now");
      }
      writeFileSync(file, `${cidr}\n`, { mode: 0o644 });
    }
    registry.claim(cidr, o.dataDir);
    return cidr;
  });
}

/** The ranges of other Berth servers on this host. */
function othersOf(registry: RangeRegistry, dataDir: string): InUse[] {
  return registry.others(dataDir).map((c) => ({
    cidr: c.cidr,
    what: `the sandbox network of another Berth server (pid ${c.pid}, data dir ${c.dataDir})`,
  }));
}

/**
 * The host's IPv4 subnets and routes (every table), but the default route and this instance's
 * own sandboxes' (veths named `<vethPrefix>*`).
 */
async function hostRanges(vethPrefix: string, log?: Logger): Promise<InUse[]> {
  const json = async (args: string[]) =>
    JSON.parse(
      (await run("ip", ["-j", "-4", ...args], { log, timeoutMs: 10_000 })).stdout || "[]",
    ) as unknown[];
  const out: InUse[] = [];
  for (const link of (await json(["addr", "show"])) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[])
    if (!link.ifname.startsWith(vethPrefix))
      for (const a of link.addr_info ?? [])
        out.push({ cidr: `${a.local}/${a.prefixlen}`, what: `the address of ${link.ifname} on this host` });
  for (const r of (await json(["route", "show", "table", "all"])) as {
    dst: string;
    dev?: string;
    table?: string;
  }[])
    if (r.dst !== "default" && !r.dst.startsWith("0.0.0.0/0") && !r.dev?.startsWith(vethPrefix))
      out.push({
        cidr: r.dst.includes("/") ? r.dst : `${r.dst}/32`,
        what: `a route${r.dev ? ` on ${r.dev}` : ""}${r.table ? ` (table ${r.table})` : ""} of this host`,
      });
  return out;
}
