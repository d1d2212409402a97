// Berth measured through its public HTTP API, as a user's program would see it: a real server
// started from the checkout (`berth serve`), a fresh data dir, keep-alive HTTP on loopback.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchProxy } from "./proxy.mjs";
import { summary, timeMany } from "./stats.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** A JSON call to a bench server's API with its admin key; throws on a non-2xx answer. */
export function caller(server) {
  return async (method, path, body) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.key}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
}

/** Starts `berth serve` on a free port; resolves once /healthz answers. */
export async function startBerth(env) {
  const dataDir = mkdtempSync("/tmp/bench-berth-");
  const port = await freePort();
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server under load.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, "packages/cli/dist/main.js"), "serve"], {
    env: {
      ...process.env,
      BERTH_DATA_DIR: dataDir,
      BERTH_PORT: String(port),
      BERTH_HOST: "127.0.0.1",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    // Sandboxes were deleted through the API; whatever is left goes with the data dir.
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`berth serve exited (${child.exitCode}):\n${stderr}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600) {
      await stop();
      throw new Error(`berth serve did not answer /healthz within 60 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const key = readFileSync(join(dataDir, "admin-key"), "utf8").trim();
  return { url, key, stop, pid: child.pid, dataDir };
}

/**
 * Berth: create-to-running, exec of `true` and delete, all through the v1 API. With
 * `network: false` the server gives sandboxes loopback only (no veth, DNS or egress rules), to
 * show what a sandbox network adds to create.
 */
export async function benchBerth(n, execN, { network = true } = {}) {
  // The pool is sized to the burst (as an operator would for bursts); BENCH_POOL overrides it.
  const poolSize = Number(process.env.BENCH_POOL ?? Math.min(64, n + 4));
  const server = await startBerth({
    BERTH_DISK_POOL_SIZE: String(poolSize),
    BERTH_LOG_LEVEL: "warn",
    BERTH_SANDBOX_NETWORKS: String(network),
  });
  const call = caller(server);
  const ids = [];
  try {
    // Let the server fill its pool of ready disks, as it does between bursts in real use.
    await new Promise((r) => setTimeout(r, 1500 + poolSize * 150));
    const create = await timeMany(n, async () => {
      const s = await call("POST", "/v1/sandboxes", network ? { network: { egress: "open" } } : {});
      if (s.state !== "running") throw new Error(`created sandbox is ${s.state}`);
      ids.push(s.id);
    });
    const execTimes = await timeMany(
      execN,
      async () => {
        const r = await call("POST", `/v1/sandboxes/${ids[0]}/exec`, { cmd: ["true"] });
        if (r.exitCode !== 0) throw new Error(`exec true exited ${r.exitCode}`);
      },
      10,
    );
    const lifecycle = network ? await benchLifecycle(call, ids, Math.min(n, 20)) : {};
    const toDelete = ids.splice(0);
    const del = await timeMany(
      toDelete.length,
      async (i) => {
        if (i >= 0) await call("DELETE", `/v1/sandboxes/${toDelete[i]}`);
      },
      0,
    );
    return {
      name: network ? "berth" : "berth-nonet",
      create: summary(create),
      exec: summary(execTimes),
      delete: summary(del),
      ...lifecycle,
      note: network
        ? `API over loopback HTTP, pool of ${poolSize}, egress open`
        : "the same without sandbox networks (loopback only)",
    };
  } finally {
    for (const id of ids) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    await server.stop();
  }
}

/** The exposed-port proxy against a direct connection (see proxy.mjs), on its own server. */
export async function benchBerthProxy() {
  const server = await startBerth({ BERTH_LOG_LEVEL: "warn" });
  const call = caller(server);
  try {
    return { name: "proxy", ...(await benchProxy(server, call)) };
  } finally {
    await server.stop();
  }
}

/**
 * Pause, resume, hibernate and wake of running sandboxes, and create-from-snapshot of a sandbox
 * holding 100 MB of files, through the API.
 */
async function benchLifecycle(call, ids, n) {
  const sample = ids.slice(0, n);
  const at = (i) => sample[i % sample.length];
  const pause = await timeMany(
    n,
    async (i) => i >= 0 && (await call("POST", `/v1/sandboxes/${at(i)}/pause`)),
    0,
  );
  const resume = await timeMany(
    n,
    async (i) => i >= 0 && (await call("POST", `/v1/sandboxes/${at(i)}/resume`)),
    0,
  );
  const hibernate = await timeMany(
    n,
    async (i) => i >= 0 && (await call("POST", `/v1/sandboxes/${at(i)}/hibernate`)),
    0,
  );
  const wake = await timeMany(
    n,
    async (i) => i >= 0 && (await call("POST", `/v1/sandboxes/${at(i)}/wake`)),
    0,
  );
  // 100 MB of files (incompressible, the worst case) in the source sandbox.
  const src = ids[0];
  await call("POST", `/v1/sandboxes/${src}/exec`, {
    cmd: [
      "sh",
      "-c",
      "mkdir -p /workspace/d && for i in $(seq 10); do head -c 10000000 /dev/urandom > /workspace/d/f$i; done",
    ],
  });
  const snap = await call("POST", `/v1/sandboxes/${src}/snapshots`, {});
  // Flush the writes above first, so that their writeback does not land inside the timings.
  execFileSync("sync");
  const fromSnapshot = await timeMany(Math.min(n, 20), async () => {
    const s = await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id });
    ids.push(s.id);
  });
  await call("DELETE", `/v1/snapshots/${snap.id}`);
  return {
    pause: summary(pause),
    resume: summary(resume),
    hibernate: summary(hibernate),
    wake: summary(wake),
    "create-from-snapshot": summary(fromSnapshot),
  };
}
