import { inCidr } from "@berth/core";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModel, startFakeModel } from "../../../../test/fixtures/fake-model/server.js";
import { ModelGateway } from "./gateway.js";
import { PriceTable } from "./prices.js";

describe("model gateway", () => {
  let model: FakeModel;
  let gateway: ModelGateway;
  let url: string;
  beforeAll(async () => {
    // The FAKE model (test fixture) is the upstream.
    model = await startFakeModel(() => ({
      kind: "text",
      text: "hello there",
      usage: { input_tokens: 1000, output_tokens: 100, cache_read_input_tokens: 500 },
    }));
    gateway = new ModelGateway({
      upstream: model.url,
      apiKey: "sk-real",
      prices: new PriceTable(JSON.stringify({ "claude-test": { input: 3, output: 15 } })),
      log: pino({ level: "silent" }),
    });
    url = `http://127.0.0.1:${await gateway.start(0)}`;
  });
  afterAll(async () => {
    await gateway.close();
    await model.close();
  });

  const ask = (token: string) =>
    fetch(`${url}/v1/messages?beta=true`, {
      method: "POST",
      headers: { "x-api-key": token, "content-type": "application/json" },
      body: JSON.stringify({
        model: "claude-test",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      }),
    });

  it("swaps the token for the real key, streams the answer unchanged, meters usage and refuses past the budget", async () => {
    const seen: number[] = [];
    const grant = {
      sessionId: "s1",
      budgetUsd: 0.01,
      spentUsd: 0,
      onUsage: (_u: unknown, c: number) => seen.push(c),
    };
    const token = gateway.grant(grant);
    const res = await ask(token);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain("event: message_start");
    expect(body).toContain('"text_delta"');
    expect(body.indexOf("message_stop")).toBeGreaterThan(body.indexOf("message_delta"));
    expect(model.requests.at(-1)?.headers["x-api-key"]).toBe("sk-real");
    expect(model.requests.at(-1)?.path).toBe("/v1/messages?beta=true");
    // 1000 in at 3, 100 out at 15, 500 cache reads at 0.3 (USD per MTok).
    expect(seen[0]).toBeCloseTo(0.003 + 0.0015 + 0.00015, 8);
    expect((await ask(token)).status).toBe(200);
    expect((await ask(token)).status).toBe(200);
    const refused = await ask(token);
    expect(refused.status).toBe(400);
    expect((await refused.json()).error.message).toContain("budget");
    gateway.revoke(token);
    expect((await ask(token)).status).toBe(401);
    expect((await ask("sk-guess")).status).toBe(401);
  });

  it("knows which addresses are in a sandbox range", () => {
    expect(inCidr("10.231.0.6", "10.231.0.0/16")).toBe(true);
    expect(inCidr("10.232.0.6", "10.231.0.0/16")).toBe(false);
    expect(inCidr("192.168.1.2", "10.231.0.0/16")).toBe(false);
    expect(inCidr("::1", "10.231.0.0/16")).toBe(false);
  });

  it("prices unknown models like the dearest family so a budget never underestimates", () => {
    const t = new PriceTable();
    const u = { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 };
    expect(t.costOf("claude-sonnet-9", u)).toBe(3);
    expect(t.costOf("claude-haiku-9", u)).toBe(1);
    expect(t.costOf("mystery", u)).toBe(t.costOf("claude-opus-9", u));
  });
});
