#!/usr/bin/env node
// Load: N clients each loop create -> exec -> write a file -> read it back -> delete against a
// running Berth server for a fixed time (loopback only), then report throughput, error rate
// and latency percentiles per operation. Usable on its own or imported (the crash test does).
//   node bench/load.mjs --url http://127.0.0.1:7070 --key KEY [--clients 8] [--seconds 30] [--json]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { summary } from "./stats.mjs";

const OPS = ["create", "exec", "write", "read", "delete"];

/**
 * Runs the load until `seconds` pass or `signal` aborts. A client whose request fails (the
 * server is down, a 5xx, a wrong answer) counts the error and starts its next loop after
 * `retryMs`; sandboxes it made but could not delete are listed in `leftovers`.
 */
export async function runLoad({ url, key, clients = 8, seconds = 30, retryMs = 100, signal, onError }) {
  const times = Object.fromEntries(OPS.map((op) => [op, []]));
  const errors = [];
  const leftovers = new Set();
  let loops = 0;
  const deadline = Date.now() + seconds * 1000;
  const live = () => Date.now() < deadline && !signal?.aborted;
  const timed = async (op, fn) => {
    const t0 = performance.now();
    const r = await fn();
    times[op].push(performance.now() - t0);
    return r;
  };
  const call = async (method, path, body, raw) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body && !raw ? { "content-type": "application/json" } : {}),
      },
      body: raw ? body : body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) {
      const err = new Error(`${method} ${path.split("?")[0]}: ${res.status} ${text.slice(0, 200)}`);
      err.status = res.status;
      throw err;
    }
    return text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  };
  const client = async (n) => {
    while (live()) {
      let id;
      try {
        const s = await timed("create", () => call("POST", "/v1/sandboxes", { labels: { load: String(n) } }));
        id = s.id;
        leftovers.add(id);
        const r = await timed("exec", () =>
          call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", "echo $((6*7))"] }),
        );
        if (r.stdout !== "42\n") throw new Error(`exec answered ${JSON.stringify(r)}`);
        const content = randomBytes(2048).toString("base64");
        const file = `/v1/sandboxes/${id}/files/content?path=/workspace/load.txt`;
        await timed("write", () => call("PUT", file, content, true));
        const back = await timed("read", () => call("GET", file));
        if (back !== content) throw new Error("the file read back differs from what was written");
        await timed("delete", () => call("DELETE", `/v1/sandboxes/${id}`));
        leftovers.delete(id);
        loops++;
      } catch (err) {
        errors.push({ at: Date.now(), status: err.status, message: String(err.cause?.code ?? err.message) });
        onError?.(err, id);
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  const elapsed = (performance.now() - t0) / 1000;
  const requests = OPS.reduce((a, op) => a + times[op].length, 0);
  return {
    clients,
    seconds: elapsed,
    loops,
    loopsPerSecond: loops / elapsed,
    requestsPerSecond: requests / elapsed,
    errors: errors.length,
    /** Answers with a 5xx status (connection failures while a server is down are not these). */
    serverErrors: errors.filter((e) => e.status >= 500).length,
    errorRate: errors.length / Math.max(1, requests + errors.length),
    errorSamples: errors.slice(0, 5).map((e) => e.message),
    ops: Object.fromEntries(OPS.map((op) => [op, summary(times[op])])),
    leftovers: [...leftovers],
  };
}

/** Prints a load report as a table. */
export function printLoad(r) {
  const f = (x) => (Number.isNaN(x) ? "-" : x.toFixed(x < 10 ? 2 : 1));
  console.log(
    `${r.clients} clients, ${r.seconds.toFixed(1)} s: ${r.loops} loops (${f(r.loopsPerSecond)}/s), ` +
      `${f(r.requestsPerSecond)} requests/s, ${r.errors} errors (${(100 * r.errorRate).toFixed(2)}%)`,
  );
  console.log("operation  p50 ms  p99 ms  n");
  for (const [op, s] of Object.entries(r.ops))
    console.log(`${op.padEnd(9)}  ${f(s.p50).padStart(6)}  ${f(s.p99).padStart(6)}  ${s.n}`);
  if (r.errorSamples.length) console.log(`first errors: ${r.errorSamples.join("; ")}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: process.env.BERTH_URL ?? "http://127.0.0.1:7070" },
      key: { type: "string", default: process.env.BERTH_API_KEY },
      clients: { type: "string", default: "8" },
      seconds: { type: "string", default: "30" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.key) {
    console.error("berth load: give --key or BERTH_API_KEY");
    process.exit(2);
  }
  const r = await runLoad({
    url: values.url,
    key: values.key,
    clients: Number(values.clients),
    seconds: Number(values.seconds),
  });
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else printLoad(r);
}
