#!/usr/bin/env node
// `npm run bench`: Berth and the peers this host can run (bare runc, Docker, bubblewrap), side by
// side in one run, with p50/p99 and ratios to Berth. A benchmark, not a test: nothing here fails
// on a number.
//   node bench/run.mjs [--only berth,berth-nonet,berth-docker,proxy,throughput,density,sessions,gateway,fork,runc,docker,bwrap]
//                      [--n 30] [--exec-n 200] [--density 500] [--json]
import { parseArgs } from "node:util";
import { benchBerth, benchBerthProxy } from "./berth.mjs";
import { benchBerthDocker } from "./berth-docker.mjs";
import { benchDensity, printDensity } from "./density.mjs";
import { benchFork, printFork } from "./fork.mjs";
import { benchGateway, printGateway } from "./gateway.mjs";
import { benchBwrap, benchDocker, benchRunc } from "./peers.mjs";
import { benchSessions, printSessions } from "./sessions.mjs";
import { benchThroughput, printThroughput } from "./throughput.mjs";

const GOALS = { create: 50, exec: 10, resume: 5, wake: 100, "create-from-snapshot": 300 };

const { values } = parseArgs({
  options: {
    only: {
      type: "string",
      default:
        "berth,berth-nonet,berth-docker,proxy,throughput,density,sessions,gateway,fork,runc,docker,bwrap",
    },
    n: { type: "string", default: process.env.BENCH_N ?? "30" },
    "exec-n": { type: "string", default: process.env.BENCH_EXEC_N ?? "200" },
    density: { type: "string", default: process.env.BENCH_DENSITY ?? "500" },
    json: { type: "boolean", default: false },
  },
});
const n = Number(values.n);
const execN = Number(values["exec-n"]);
const only = new Set(values.only.split(","));
const log = (m) => process.stderr.write(`[bench] ${m}\n`);

const systems = [
  ["berth", () => benchBerth(n, execN)],
  ["berth-nonet", () => benchBerth(n, Math.min(execN, 50), { network: false })],
  ["berth-docker", () => benchBerthDocker(n, Math.min(execN, 50))],
  ["proxy", () => benchBerthProxy()],
  ["throughput", () => benchThroughput()],
  ["density", () => benchDensity(Number(values.density))],
  ["sessions", () => benchSessions(Math.max(3, Math.min(n, 10)))],
  ["gateway", () => benchGateway()],
  ["fork", () => benchFork(Number(process.env.BENCH_FORK_N ?? 10))],
  ["runc", () => benchRunc(n, execN)],
  ["docker", () => benchDocker(n, Math.min(execN, 50))],
  ["bwrap", () => benchBwrap(n)],
];

const results = [];
for (const [name, run] of systems) {
  if (!only.has(name)) continue;
  log(`${name}: measuring (${n} creates, up to ${execN} execs)...`);
  const t0 = Date.now();
  try {
    const r = await run();
    if (r) results.push(r);
    log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    log(`${name}: failed: ${err.message}`);
  }
}

if (values.json) {
  console.log(JSON.stringify({ host: hostInfo(), n, execN, results }, null, 2));
} else {
  printTable(results);
}

function hostInfo() {
  return { node: process.version, platform: process.platform, date: new Date().toISOString() };
}

function printTable(rs) {
  const berth = rs.find((r) => r.name === "berth");
  const fmt = (x) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(x < 10 ? 2 : 1));
  const rows = [["operation", "system", "p50 ms", "p99 ms", "n", "p50 vs berth", "note"]];
  for (const op of [
    "create",
    "exec",
    "delete",
    "pause",
    "resume",
    "hibernate",
    "wake",
    "create-from-snapshot",
  ]) {
    for (const r of rs) {
      const s = r[op];
      if (!s) continue;
      const base = berth?.[op]?.p50;
      const ratio = r.name === "berth" || !base ? "" : `${(s.p50 / base).toFixed(1)}x`;
      rows.push([op, r.name, fmt(s.p50), fmt(s.p99), String(s.n), ratio, r.note ?? ""]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows)
    console.log(
      row
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    );
  const nonet = rs.find((r) => r.name === "berth-nonet");
  if (berth && nonet)
    console.log(
      `\nnetwork: a sandbox network adds ${fmt(berth.create.p50 - nonet.create.p50)} ms to create p50 (goal <= 15 ms)`,
    );
  const density = rs.find((r) => r.name === "density");
  if (density) printDensity(density);
  const throughput = rs.find((r) => r.name === "throughput");
  if (throughput) printThroughput(throughput);
  const sessions = rs.find((r) => r.name === "sessions");
  if (sessions) printSessions(sessions);
  const gateway = rs.find((r) => r.name === "gateway");
  if (gateway) printGateway(gateway);
  const fork = rs.find((r) => r.name === "fork");
  if (fork) printFork(fork);
  const proxy = rs.find((r) => r.name === "proxy");
  if (proxy) {
    const { latency: l, throughput: t } = proxy;
    console.log(
      `\nproxy (GET /hello of a node server in a sandbox): p50 latency direct ${fmt(l.direct.p50)} ms, ` +
        `through Berth ${fmt(l.proxy.p50)} ms (+${fmt(l.proxy.p50 - l.direct.p50)} ms, goal <= 1 ms; ` +
        `p99 ${fmt(l.direct.p99)} / ${fmt(l.proxy.p99)} ms)`,
    );
    console.log(
      `proxy throughput (16 connections): direct ${t.direct.rps.toFixed(0)} req/s, through Berth ` +
        `${t.proxy.rps.toFixed(0)} req/s = ${((100 * t.proxy.rps) / t.direct.rps).toFixed(0)}% of direct ` +
        `(goal >= 70%; errors ${t.direct.errors} / ${t.proxy.errors})`,
    );
  }
  if (berth) {
    console.log("");
    for (const op of Object.keys(GOALS)) {
      const p50 = berth[op]?.p50;
      if (p50 === undefined) continue;
      console.log(
        `goal: berth ${op} p50 <= ${GOALS[op]} ms: ${fmt(p50)} ms, ${p50 <= GOALS[op] ? "met" : "NOT met"}`,
      );
    }
  }
  console.log("\n'create' is create-to-running (Berth: until POST /v1/sandboxes answers, exec-ready);");
  console.log("'exec' runs `true` in a running sandbox; peers are driven through their CLIs.");
}
