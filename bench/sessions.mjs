// Agent sessions: time from `POST /v1/sessions` to the first streamed SDK message and to the
// result, for a one-turn session against the FAKE model (test/fixtures/fake-model), next to the
// same `query()` run bare on the host (the SDK spawning `claude` itself, no sandbox, no gateway).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { query } from "@anthropic-ai/claude-agent-sdk";
import { buildSync } from "esbuild";
import { caller, startBerth } from "./berth.mjs";
import { summary } from "./stats.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The fake model fixture is TypeScript: bundle it once for this run. */
export async function fakeModel(script = () => ({ kind: "text", text: "done" })) {
  const dir = mkdtempSync(join(tmpdir(), "bench-fake-model-"));
  const out = join(dir, "fake-model.mjs");
  buildSync({
    entryPoints: [join(ROOT, "test/fixtures/fake-model/server.ts")],
    outfile: out,
    format: "esm",
    platform: "node",
    logLevel: "silent",
  });
  const mod = await import(pathToFileURL(out).href);
  const model = await mod.startFakeModel(script);
  return { model, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One bare `query()` on the host: ms to the first message and to the result. */
async function bareOnce(url) {
  const home = mkdtempSync(join(tmpdir(), "bench-claude-home-"));
  const t0 = performance.now();
  let first;
  try {
    for await (const m of query({
      prompt: "say done",
      options: {
        cwd: home,
        maxTurns: 1,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          ANTHROPIC_BASE_URL: url,
          ANTHROPIC_API_KEY: "sk-bench",
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        },
      },
    })) {
      first ??= performance.now() - t0;
      if (m.type === "result") return { first, result: performance.now() - t0 };
    }
    throw new Error("no result");
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** One ephemeral session through Berth: ms from POST to the first `message` event and to the result. */
async function berthOnce(server, call, body = { agent: { maxTurns: 1 } }) {
  const t0 = performance.now();
  const s = await call("POST", "/v1/sessions", { prompt: "say done", ...body });
  const res = await fetch(`${server.url}/v1/sessions/${s.id}/events`, {
    headers: { authorization: `Bearer ${server.key}`, accept: "text/event-stream" },
  });
  let first;
  let buf = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (!block.includes("event: message")) continue;
      first ??= performance.now() - t0;
      if (block.includes('"type":"result"')) {
        const result = performance.now() - t0;
        await res.body.cancel().catch(() => {});
        // Not measured: the session ends (its sandbox deleted) before the next run.
        for (;;) {
          if ((await call("GET", `/v1/sessions/${s.id}`)).state === "completed") break;
          await new Promise((r) => setTimeout(r, 50));
        }
        return { first, result };
      }
    }
  }
  throw new Error(`session ${s.id}: no result`);
}

/** Waits until the server's warm pool has a parked start (not timed: between sessions in real use). */
async function poolReady(server) {
  for (let i = 0; i < 600; i++) {
    const text = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.key}` } })
    ).text();
    if (/^berth_agent_warm_pool_ready [1-9]/m.test(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the warm pool never filled");
}

function sessionServer(model, env = {}) {
  return startBerth({
    BERTH_LOG_LEVEL: "warn",
    BERTH_ANTHROPIC_API_KEY: "sk-bench",
    BERTH_ANTHROPIC_BASE_URL: model.url,
    // Its own addresses, so it never shares a range with another server on this host.
    BERTH_NETWORK_CIDR: `10.${128 + Math.floor(Math.random() * 127)}.${Math.floor(Math.random() * 64) * 4}.0/22`,
    ...env,
  });
}

/**
 * Bare `query()` and Berth sessions, alternating, `n` of each after one warm-up of each: cold
 * (a new sandbox and `claude` per session) and warm (BERTH_AGENT_WARM_POOL=1: a parked one).
 */
export async function benchSessions(n = 5) {
  const { model, cleanup } = await fakeModel();
  const pick = (xs, k) => summary(xs.map((x) => x[k]));
  const both = (xs) => ({ first: pick(xs, "first"), result: pick(xs, "result") });
  try {
    const bare = [];
    const cold = [];
    const cold2 = [];
    // The sandbox's default is 1 CPU; bare `claude` on the host may use both cores.
    const twoCpus = { agent: { maxTurns: 1 }, sandbox: { resources: { cpus: 2 } } };
    const server = await sessionServer(model);
    try {
      const call = caller(server);
      // One of each first, not counted (page cache, JIT).
      await bareOnce(model.url);
      await berthOnce(server, call);
      for (let i = 0; i < n; i++) {
        bare.push(await bareOnce(model.url));
        cold.push(await berthOnce(server, call));
        cold2.push(await berthOnce(server, call, twoCpus));
      }
    } finally {
      await server.stop();
    }
    const warm = [];
    const pooled = await sessionServer(model, { BERTH_AGENT_WARM_POOL: "1" });
    try {
      const call = caller(pooled);
      for (let i = 0; i <= n; i++) {
        await poolReady(pooled);
        // Default agent options: what a parked process can take.
        const r = await berthOnce(pooled, call, {});
        if (i > 0) warm.push(r);
      }
    } finally {
      await pooled.stop();
    }
    return { name: "sessions", bare: both(bare), berth: both(cold), berth2: both(cold2), warm: both(warm) };
  } finally {
    await model.close();
    cleanup();
  }
}

/** Prints the sessions rows of a bench run. */
export function printSessions(r) {
  const fmt = (x) => x.toFixed(0);
  const pct = (a, b) => `${(((a - b) / b) * 100).toFixed(0)}%`;
  console.log(
    `\nagent session, one turn, fake model (p50 ms; ephemeral = cold: a new sandbox each):\n` +
      `  to first message: bare query() ${fmt(r.bare.first.p50)}, Berth ${fmt(r.berth.first.p50)} (+${pct(r.berth.first.p50, r.bare.first.p50)}, goal <= 15%)\n` +
      `  to result:        bare query() ${fmt(r.bare.result.p50)}, Berth ${fmt(r.berth.result.p50)} (+${pct(r.berth.result.p50, r.bare.result.p50)}, goal <= 15%)\n` +
      `  cold, the sandbox with 2 CPUs (as many as bare claude has here):\n` +
      `  to first message: Berth ${fmt(r.berth2.first.p50)} (+${pct(r.berth2.first.p50, r.bare.first.p50)})\n` +
      `  to result:        Berth ${fmt(r.berth2.result.p50)} (+${pct(r.berth2.result.p50, r.bare.result.p50)})\n` +
      `  warm (BERTH_AGENT_WARM_POOL=1, a parked claude in a ready sandbox):\n` +
      `  to first message: Berth ${fmt(r.warm.first.p50)} (${pct(r.warm.first.p50, r.bare.first.p50)} vs bare cold)\n` +
      `  to result:        Berth ${fmt(r.warm.result.p50)} (${pct(r.warm.result.p50, r.bare.result.p50)} vs bare cold, goal: faster than bare cold)`,
  );
}
