// Density: how many idle sandboxes one host holds. Creates N sandboxes that each run a sleeping
// background process, then reports the host memory they take (MemAvailable before and after),
// their own cgroup memory, the server's RSS, and exec latency into random ones.
import { readFileSync } from "node:fs";
import { caller, startBerth } from "./berth.mjs";
import { summary, timeMany } from "./stats.mjs";

const memAvailable = () =>
  Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))[1]) * 1024;
const rssOf = (pid) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
const MiB = 1024 * 1024;

export async function benchDensity(n) {
  const server = await startBerth({ BERTH_LOG_LEVEL: "warn", BERTH_DISK_POOL_SIZE: "8" });
  const call = caller(server);
  const ids = [];
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const before = memAvailable();
    const rss0 = rssOf(server.pid);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = await call("POST", "/v1/sandboxes", { resources: { memoryMiB: 256 } });
      ids.push(s.id);
      await call("POST", `/v1/sandboxes/${s.id}/processes`, { cmd: ["sleep", "infinity"] });
    }
    const createSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 3000));
    const after = memAvailable();
    const cgroup = await Promise.all(
      ids.slice(0, 20).map(async (id) => (await call("GET", `/v1/sandboxes/${id}/metrics`)).memoryBytes),
    );
    const exec = await timeMany(100, async () => {
      const id = ids[Math.floor(Math.random() * ids.length)];
      const r = await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["true"] });
      if (r.exitCode !== 0) throw new Error(`exec in ${id} exited ${r.exitCode}`);
    });
    return {
      name: "density",
      sandboxes: n,
      createSeconds,
      hostBytesPerSandbox: (before - after) / n,
      cgroupBytesPerSandbox: cgroup.reduce((a, b) => a + b, 0) / cgroup.length,
      serverRssBytes: rssOf(server.pid),
      serverRssGrowthBytes: rssOf(server.pid) - rss0,
      exec: summary(exec),
    };
  } finally {
    for (const id of ids) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    await server.stop();
  }
}

/** One line per figure, for the bench report. */
export function printDensity(d) {
  const mib = (b) => `${(b / MiB).toFixed(1)} MiB`;
  console.log(
    `\ndensity: ${d.sandboxes} idle sandboxes (each with a sleeping process) made in ${d.createSeconds.toFixed(1)} s; ` +
      `host memory ${mib(d.hostBytesPerSandbox)} per sandbox (MemAvailable), ${mib(d.cgroupBytesPerSandbox)} in its cgroup; ` +
      `server RSS ${mib(d.serverRssBytes)} (+${mib(d.serverRssGrowthBytes)}); exec into a random one p50 ${d.exec.p50.toFixed(2)} ms, p99 ${d.exec.p99.toFixed(2)} ms`,
  );
  const per = d.hostBytesPerSandbox / MiB;
  console.log(
    `goal: 500 idle sandboxes with <= 4 MB each and server RSS <= 300 MB: ${d.sandboxes} made, ` +
      `${per.toFixed(1)} MiB each, RSS ${mib(d.serverRssBytes)}: ${d.sandboxes >= 500 && per <= 4 && d.serverRssBytes <= 300 * MiB ? "met" : "NOT met"}`,
  );
}
