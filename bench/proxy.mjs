// Exposed-port proxy against a direct connection to the same server in the same sandbox:
// autocannon (keep-alive) on GET /hello of test/fixtures/port-server.mjs, first straight to the
// sandbox's address, then through Berth's proxy (/p/<id>/<port>/ on its preview listener, with the port's token).
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { summary, timeMany } from "./stats.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PORT = 8000;

/** Throughput of one autocannon run: requests/s and failed requests. */
async function load(url, headers, connections, seconds) {
  const r = await autocannon({ url, headers, connections, duration: seconds, pipelining: 1 });
  return { rps: r.requests.average, errors: r.errors + r.timeouts + r.non2xx };
}

/**
 * Latency of `n` sequential requests on one keep-alive connection, timed to the microsecond
 * (autocannon's histogram keeps whole milliseconds, too coarse for a sub-millisecond proxy).
 */
async function latency(url, headers, n) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise((resolve, reject) => {
      const req = request(url, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`)),
        );
      });
      req.on("error", reject);
      req.end();
    });
  try {
    return summary(await timeMany(n, once, 50));
  } finally {
    agent.destroy();
  }
}

/**
 * Starts the fixture server in a new sandbox (egress open so the host can reach its address),
 * exposes its port, and loads both paths: one connection for latency, 16 for throughput.
 */
export async function benchProxy(server, call, { seconds = 5 } = {}) {
  const sb = await call("POST", "/v1/sandboxes", {
    network: { egress: "open" },
    resources: { memoryMiB: 1024 },
  });
  try {
    const put = await fetch(`${server.url}/v1/sandboxes/${sb.id}/files/content?path=/workspace/server.mjs`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.key}` },
      body: readFileSync(join(ROOT, "test/fixtures/port-server.mjs")),
    });
    if (!put.ok) throw new Error(`upload: ${put.status}`);
    await call("POST", `/v1/sandboxes/${sb.id}/processes`, {
      cmd: ["node", "/workspace/server.mjs", String(PORT), "0.0.0.0"],
    });
    const addr = await call("POST", `/v1/sandboxes/${sb.id}/exec`, {
      cmd: ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"],
    });
    const ip = addr.stdout.trim();
    const direct = `http://${ip}:${PORT}/hello`;
    for (let i = 0; ; i++) {
      if (
        (await fetch(direct)
          .then((r) => r.ok)
          .catch(() => false)) === true
      )
        break;
      if (i > 100) throw new Error(`the fixture server did not answer at ${direct}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The port's URL: /p/<id>/<port>/ on the server's preview listener.
    const { token, url } = await call("POST", `/v1/sandboxes/${sb.id}/ports`, { port: PORT });
    const proxied = `${url}hello`;
    const auth = { "x-berth-token": token };
    // Warm both paths (JIT, pooled connections), then measure.
    await load(direct, {}, 4, 1);
    await load(proxied, auth, 4, 1);
    const latencies = { direct: await latency(direct, {}, 2000), proxy: await latency(proxied, auth, 2000) };
    const throughput = {
      direct: await load(direct, {}, 16, seconds),
      proxy: await load(proxied, auth, 16, seconds),
    };
    return { latency: latencies, throughput };
  } finally {
    await call("DELETE", `/v1/sandboxes/${sb.id}`).catch(() => {});
  }
}
