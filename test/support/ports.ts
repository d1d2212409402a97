import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * The kernel's ephemeral range: every `listen(0)` and outgoing connection of every test process
 * takes its port from here, so a port picked from it can be taken again before the caller binds
 * it (a CI run failed that way: EADDRINUSE on a port another test had been handed meanwhile).
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    return [Number(lo), Number(hi)];
  } catch {
    return [32768, 60999];
  }
}

const canBind = (port: number, host: string) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });

/**
 * A TCP port free on `host` right now, chosen below the ephemeral range where the kernel never
 * hands ports out by itself; only another test picking the same random port could race for it.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [lo] = ephemeralRange();
  const from = Math.max(1024, lo - 12_000);
  for (let i = 0; i < 200; i++) {
    const port = from + Math.floor(Math.random() * (lo - from));
    if (await canBind(port, host)) return port;
  }
  throw new Error(`no free port between ${from} and ${lo} on ${host}`);
}
