// Fork: N copies of a sandbox that changed 100 MB, through the E2B fork endpoint
// (`POST /e2b/sandboxes/:id/fork {count}`), on a server whose disks reflink (the default) and on
// one with BERTH_DISK_COPY_ON_WRITE=false (disks copied in full), beside what a fork cost before
// copy-on-write (a snapshot, then N creates from it). Also the price of the disk store: a
// sandbox writing 200 MB with fsync on each server (a btrfs image under the sandbox's own disk
// image where the data dir cannot reflink, against the data dir's filesystem directly).
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { caller, startBerth } from "./berth.mjs";
import { summary } from "./stats.mjs";

const CHANGE =
  "mkdir -p /workspace/d && for i in $(seq 10); do head -c 10000000 /dev/urandom > /workspace/d/f$i; done";
const WRITE = "dd if=/dev/zero of=/workspace/w bs=1M count=200 conv=fsync status=none && rm /workspace/w";

/** One server: fork N copies `rounds` times, and the 200 MB write in a sandbox. */
async function measure(env, n, rounds, withSnapshotPath) {
  const server = await startBerth({ BERTH_LOG_LEVEL: "warn", BERTH_DISK_POOL_SIZE: "2", ...env });
  const call = caller(server);
  const ids = [];
  try {
    const { key } = await call("POST", "/v1/e2b/keys", {});
    const e2b = async (path, body) => {
      const res = await fetch(`${server.url}/e2b${path}`, {
        method: "POST",
        headers: { "x-api-key": key, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST /e2b${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const src = await call("POST", "/v1/sandboxes", {});
    ids.push(src.id);
    const w = await call("POST", `/v1/sandboxes/${src.id}/exec`, { cmd: ["sh", "-c", CHANGE] });
    if (w.exitCode !== 0) throw new Error(`writing 100 MB exited ${w.exitCode}`);
    execFileSync("sync");
    const fork = [];
    const snapshotPath = [];
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      const made = await e2b(`/sandboxes/${src.id}/fork`, { count: n });
      fork.push(performance.now() - t0);
      for (const m of made) {
        if (!m.sandbox) throw new Error(`a fork failed: ${JSON.stringify(m.error)}`);
        ids.push(m.sandbox.sandboxID);
      }
      const check = await call("POST", `/v1/sandboxes/${made[n - 1].sandbox.sandboxID}/exec`, {
        cmd: ["sh", "-c", "cat /workspace/d/* | wc -c"],
      });
      if (check.stdout.trim() !== "100000000") throw new Error(`a fork holds ${check.stdout.trim()} bytes`);
      for (const id of ids.splice(1)) await call("DELETE", `/v1/sandboxes/${id}`);
      if (!withSnapshotPath) continue;
      // What a fork was before: a snapshot (a tar of the changes), then N creates from it.
      t0 = performance.now();
      const snap = await call("POST", `/v1/sandboxes/${src.id}/snapshots`, {});
      for (let i = 0; i < n; i++)
        ids.push((await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id })).id);
      await call("DELETE", `/v1/snapshots/${snap.id}`);
      snapshotPath.push(performance.now() - t0);
      for (const id of ids.splice(1)) await call("DELETE", `/v1/sandboxes/${id}`);
    }
    // The floor under any fork on this host as it is now: N fresh sandboxes made side by side.
    const creates = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const made = await Promise.all(Array.from({ length: n }, () => call("POST", "/v1/sandboxes", {})));
      creates.push(performance.now() - t0);
      for (const m of made) await call("DELETE", `/v1/sandboxes/${m.id}`);
    }
    const writes = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const d = await call("POST", `/v1/sandboxes/${src.id}/exec`, { cmd: ["sh", "-c", WRITE] });
      if (d.exitCode !== 0) throw new Error(`dd exited ${d.exitCode}: ${d.stderr}`);
      writes.push(performance.now() - t0);
    }
    return {
      fork: summary(fork),
      creates: summary(creates),
      snapshotPath: withSnapshotPath ? summary(snapshotPath) : undefined,
      write: summary(writes),
    };
  } finally {
    for (const id of ids) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    await server.stop();
  }
}

/** Fork of a sandbox that changed 100 MB into `n` copies: copy-on-write, full copies, and the snapshot way. */
export async function benchFork(n = 10, rounds = 3) {
  const cow = await measure({}, n, rounds, true);
  const full = await measure({ BERTH_DISK_COPY_ON_WRITE: "false" }, n, rounds, false);
  return { name: "fork", n, rounds, cow, full };
}

/** Prints the fork case with its ratios. */
export function printFork(f) {
  const ms = (s) => `${s.p50.toFixed(0)} ms (p99 ${s.p99.toFixed(0)}, ${s.n} runs)`;
  const x = (a, b) => `${(a.p50 / b.p50).toFixed(1)}x`;
  console.log(`\nfork of a sandbox that changed 100 MB into ${f.n} copies (E2B fork endpoint, whole call):`);
  console.log(`  copy-on-write (reflinked disks):      ${ms(f.cow.fork)}   goal well under 1000 ms`);
  console.log(
    `  full copies (BERTH_DISK_COPY_ON_WRITE=false): ${ms(f.full.fork)}   ${x(f.full.fork, f.cow.fork)} of copy-on-write`,
  );
  console.log(
    `  snapshot + ${f.n} creates from it (the fork before): ${ms(f.cow.snapshotPath)}   ${x(f.cow.snapshotPath, f.cow.fork)} of copy-on-write`,
  );
  console.log(
    `  ${f.n} fresh sandboxes side by side (nothing copied, the floor): ${ms(f.cow.creates)}   fork is ${x(f.cow.fork, f.cow.creates)} of it`,
  );
  console.log(
    `disk write in a sandbox, 200 MB with fsync: ${ms(f.cow.write)} on the copy-on-write store, ` +
      `${ms(f.full.write)} on the data dir's filesystem (${x(f.cow.write, f.full.write)})`,
  );
}
