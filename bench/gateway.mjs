// The model gateway's cost per model request: a streamed one-turn answer of the FAKE model
// (test/fixtures/fake-model) fetched directly and through Berth's gateway (token check, body read,
// worst-case hold, relay, metering), with no budget, with a budget the worst case fits, and with a
// budget so tight that the gateway asks the upstream to count the input first.
import pino from "pino";
import { ModelGateway } from "../packages/server/dist/gateway/gateway.js";
import { PriceTable } from "../packages/server/dist/gateway/prices.js";
import { fakeModel } from "./sessions.mjs";
import { summary, timeMany } from "./stats.mjs";

/** A request about the size Claude Code sends (system prompt and tools: ~60 KB). */
const BODY = JSON.stringify({
  model: "claude-sonnet-4-5",
  max_tokens: 32_000,
  stream: true,
  system: "x".repeat(60_000),
  messages: [{ role: "user", content: "say done" }],
});

async function streamed(url, key) {
  const res = await fetch(`${url}/v1/messages?beta=true`, {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: BODY,
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  await res.text();
}

/** Requests per second with `c` clients for `ms`. */
async function rps(url, key, c = 16, ms = 3000) {
  let done = 0;
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (Date.now() < until) {
        await streamed(url, key);
        done++;
      }
    }),
  );
  return (done * 1000) / ms;
}

export async function benchGateway(n = 200) {
  const { model, cleanup } = await fakeModel(() => ({
    kind: "text",
    text: "done",
    usage: { input_tokens: 15_000, output_tokens: 20 },
  }));
  const gateway = new ModelGateway({
    upstream: model.url,
    apiKey: "sk-bench",
    prices: new PriceTable(),
    log: pino({ level: "silent" }),
  });
  const url = `http://127.0.0.1:${await gateway.start(0)}`;
  const grant = (budgetUsd) =>
    gateway.grant({
      sessionId: "b",
      sandboxId: "b",
      tenantId: "b",
      budgetUsd,
      spentUsd: 0,
      onUsage: () => {},
    });
  try {
    const free = grant(null);
    // Worst case of BODY at Sonnet prices: ~60k input tokens x 3.75 + 32k output x 15 = ~USD 0.71.
    const roomy = grant(1e6);
    const direct = summary(await timeMany(n, () => streamed(model.url, "sk-bench"), 20));
    const open = summary(await timeMany(n, () => streamed(url, free), 20));
    const held = summary(await timeMany(n, () => streamed(url, roomy), 20));
    // Each request: the byte bound does not fit USD 0.6, the exact count (~15k tokens) does.
    const tight = summary(await timeMany(Math.min(n, 100), () => streamed(url, grant(0.6)), 5));
    const throughput = { direct: await rps(model.url, "sk-bench"), gateway: await rps(url, roomy) };
    return { name: "gateway", direct, open, held, tight, throughput };
  } finally {
    await gateway.close();
    await model.close();
    cleanup();
  }
}

/** Prints the gateway rows of a bench run. */
export function printGateway(r) {
  const fmt = (x) => x.toFixed(2);
  const plus = (s) => {
    const d = s.p50 - r.direct.p50;
    return `${d < 0 ? "-" : "+"}${fmt(Math.abs(d))} ms`;
  };
  console.log(
    "\nmodel gateway, one streamed answer of the fake model, 60 KB request (p50 / p99 ms):\n" +
      `  direct to the model:                  ${fmt(r.direct.p50)} / ${fmt(r.direct.p99)}\n` +
      `  through the gateway, no budget:       ${fmt(r.open.p50)} / ${fmt(r.open.p99)} (${plus(r.open)})\n` +
      `  with a budget (worst case held):      ${fmt(r.held.p50)} / ${fmt(r.held.p99)} (${plus(r.held)})\n` +
      `  tight budget (input counted first):   ${fmt(r.tight.p50)} / ${fmt(r.tight.p99)} (${plus(r.tight)})\n` +
      `  throughput, 16 clients: direct ${r.throughput.direct.toFixed(0)} req/s, through the gateway ` +
      `${r.throughput.gateway.toFixed(0)} req/s = ${((100 * r.throughput.gateway) / r.throughput.direct).toFixed(0)}% of direct`,
  );
}
