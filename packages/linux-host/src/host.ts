import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** True when `cmd` runs (`cmd --version` exits 0). */
export function installed(cmd: string): boolean {
  return spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
}

/** True when `cmd` is on the PATH (or in an sbin dir, where Debian puts ip and nft). */
export function onPath(cmd: string): boolean {
  return (
    spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin" command -v ${cmd}`], { stdio: "ignore" }).status ===
    0
  );
}

/** The host's IPv4 nameservers in resolv.conf order. */
function nameservers(path: string): string[] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .map((l) => /^nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(l.trim())?.[1])
      .filter((ip): ip is string => Boolean(ip));
  } catch {
    return [];
  }
}

/** The host's first IPv4 nameserver (the upstream of the sandboxes' resolver). */
export function hostResolver(path = "/etc/resolv.conf"): string {
  return nameservers(path)[0] ?? "127.0.0.53";
}

/** The host's IPv4 resolvers but loopback ones (what Docker's embedded DNS forwards to). */
export function hostResolvers(path = "/etc/resolv.conf"): string[] {
  return nameservers(path).filter((ip) => !ip.startsWith("127."));
}

/** The names in a directory; none when it does not exist. */
export function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
