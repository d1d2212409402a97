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
async function fakeModel() {
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
  const model = await mod.startFakeModel(() => ({ kind: "text", text: "done" }));
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
async function berthOnce(server, call) {
  const t0 = performance.now();
  const s = await call("POST", "/v1/sessions", { prompt: "say done", agent: { maxTurns: 1 } });
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

/** Bare `query()` and Berth sessions, alternating, `n` of each after one warm-up of each. */
export async function benchSessions(n = 5) {
  const { model, cleanup } = await fakeModel();
  const server = await startBerth({
    BERTH_LOG_LEVEL: "warn",
    BERTH_ANTHROPIC_API_KEY: "sk-bench",
    BERTH_ANTHROPIC_BASE_URL: model.url,
    // Its own addresses, so it never shares a range with another server on this host.
    BERTH_NETWORK_CIDR: `10.${128 + Math.floor(Math.random() * 127)}.${Math.floor(Math.random() * 64) * 4}.0/22`,
  });
  const call = caller(server);
  try {
    const bare = [];
    const berth = [];
    // One of each first, not counted (page cache, JIT).
    await bareOnce(model.url);
    await berthOnce(server, call);
    for (let i = 0; i < n; i++) {
      bare.push(await bareOnce(model.url));
      berth.push(await berthOnce(server, call));
    }
    const pick = (xs, k) => summary(xs.map((x) => x[k]));
    return {
      name: "sessions",
      bare: { first: pick(bare, "first"), result: pick(bare, "result") },
      berth: { first: pick(berth, "first"), result: pick(berth, "result") },
    };
  } finally {
    await server.stop();
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
      `  to result:        bare query() ${fmt(r.bare.result.p50)}, Berth ${fmt(r.berth.result.p50)} (+${pct(r.berth.result.p50, r.bare.result.p50)}, goal <= 15%)`,
  );
}
