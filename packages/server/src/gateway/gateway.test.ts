/**
 * The model gateway on real HTTP over loopback, against the FAKE model (test fixture) as its
 * upstream and a decoy server standing for everything else a sandbox could aim it at.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Store } from "@berth/core";
import { openStore } from "@berth/store";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  type FakeTurn,
  startFakeModel,
} from "../../../../test/fixtures/fake-model/server.js";
import { TenantBudgets } from "./budgets.js";
import { type GatewayGrant, type ModelFailure, ModelGateway } from "./gateway.js";
import { PriceTable } from "./prices.js";

const REAL_KEY = "sk-real-do-not-leak";
const log = pino({ level: "silent" });

/** A server that must never be reached: it records whatever comes. */
async function startDecoy(): Promise<{ port: number; hits: string[]; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url} key=${req.headers["x-api-key"] ?? ""}`);
    res.end("decoy");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, hits, server };
}

/** Sends `head` (request line and headers, verbatim) and a body on a raw socket; answers status and text. */
function rawRequest(port: number, head: string, body = ""): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    s.on("data", (c) => (text += c.toString()));
    s.on("error", reject);
    s.on("close", () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }));
    s.end(`${head}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}

/** What a realistic fake answer uses: about a token per 4 bytes of request, and all of max_tokens. */
const realistic = (body: any, raw: number): FakeTurn => ({
  kind: "text",
  text: "fine",
  usage: { input_tokens: Math.ceil(raw / 4), output_tokens: body?.max_tokens ?? 1 },
});

const messages = (model: string, maxTokens: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model,
    max_tokens: maxTokens,
    stream: true,
    messages: [{ role: "user", content: "hi" }],
    ...extra,
  });

describe("model gateway", () => {
  let model: FakeModel;
  let decoy: Awaited<ReturnType<typeof startDecoy>>;
  let gateway: ModelGateway;
  let port: number;
  let url: string;
  let dataDir: string;
  let store: Store;
  /** Where the gateway thinks each sandbox sends from (tokens are bound to it). */
  const addresses = new Map<string, string>();

  beforeAll(async () => {
    model = await startFakeModel((req) => realistic(req.body, JSON.stringify(req.body ?? "").length));
    decoy = await startDecoy();
    dataDir = mkdtempSync(join(tmpdir(), "berth-gateway-"));
    store = await openStore({ dataDir });
    gateway = new ModelGateway({
      upstream: `${model.url}/`,
      apiKey: REAL_KEY,
      prices: new PriceTable(JSON.stringify({ "claude-test": { input: 3, output: 15 } })),
      log,
      tokenFrom: (sandboxId, ip) => addresses.get(sandboxId) === ip,
      tenantBudgets: new TenantBudgets(store),
    });
    port = await gateway.start(0);
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await gateway.close();
    await model.close();
    await new Promise((r) => decoy.server.close(r));
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A grant of a session in a sandbox that sends from loopback, recording what it is told. */
  function grantFor(o: Partial<GatewayGrant> = {}) {
    const costs: number[] = [];
    const failures: ModelFailure[] = [];
    const sandboxId = o.sandboxId ?? `sb-${Math.random().toString(36).slice(2)}`;
    if (!o.sandboxId) addresses.set(sandboxId, "127.0.0.1");
    const token = gateway.grant({
      sessionId: "s",
      sandboxId,
      tenantId: "t-none",
      budgetUsd: null,
      spentUsd: 0,
      onUsage: (_u, c) => costs.push(c),
      onFailure: (f) => failures.push(f),
      ...o,
    });
    return { token, costs, failures, spent: () => costs.reduce((a, b) => a + b, 0) };
  }

  const ask = (
    token: string,
    body = messages("claude-test", 100),
    path = "/v1/messages?beta=true",
    headers = {},
  ) =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { "x-api-key": token, "content-type": "application/json", ...headers },
      body,
    });

  it("swaps the token for the real key, streams the answer unchanged and meters it at the table's prices", async () => {
    const g = grantFor();
    const body = messages("claude-test", 100);
    const res = await ask(g.token, body);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("event: message_start");
    expect(text).toContain('"text_delta"');
    expect(text.indexOf("message_stop")).toBeGreaterThan(text.indexOf("message_delta"));
    const seen = model.requests.at(-1);
    expect(seen?.headers["x-api-key"]).toBe(REAL_KEY);
    expect(seen?.path).toBe("/v1/messages?beta=true");
    // input at 3, output at 15 USD per MTok.
    expect(g.costs[0]).toBeCloseTo((Math.ceil(body.length / 4) * 3 + 100 * 15) / 1e6, 10);
  });

  it("relays only POST /v1/messages and count_tokens in origin form: no other target reaches anyone or carries the key", async () => {
    const g = grantFor();
    const before = model.requests.length;
    const targets = [
      `http://127.0.0.1:${decoy.port}/v1/messages`,
      `http://127.0.0.1:${decoy.port}/metrics`,
      `//127.0.0.1:${decoy.port}/v1/messages`,
      `//127.0.0.1:${decoy.port}/metrics`,
      "/%2f127.0.0.1/v1/messages",
      "/%761/messages",
      "/v1/%6dessages",
      "/v1/messages/",
      "/v1/messages/../models",
      "/v1/./messages",
      "/v1/messages/batches",
      "/v1/messages%2f..%2fmodels",
      "/v1/models",
      "/v1/files",
      "/v1/organizations/me",
      "/v1/complete",
      "*",
    ];
    const body = messages("claude-test", 10);
    for (const target of targets)
      for (const method of ["POST", "GET"]) {
        const r = await rawRequest(
          port,
          `${method} ${target} HTTP/1.1\r\nhost: x\r\nx-api-key: ${g.token}`,
          body,
        );
        expect([400, 404], `${method} ${target}: ${r.text}`).toContain(r.status);
        expect(r.text).not.toContain(REAL_KEY);
      }
    // Right path, wrong method.
    const get = await rawRequest(port, `GET /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${g.token}`);
    expect(get.status).toBe(404);
    expect(get.text).toContain("relays only POST /v1/messages");
    expect(decoy.hits).toEqual([]);
    expect(model.requests.length).toBe(before);
    expect(g.costs).toEqual([]);
  });

  it("sends the upstream allowlisted headers only: no client credential, cookie or forwarding header passes", async () => {
    const g = grantFor();
    const res = await ask(g.token, messages("claude-test", 10), "/v1/messages?beta=true&target=http://evil", {
      authorization: "Bearer sk-client-secret",
      cookie: "session=abc",
      "proxy-authorization": "Basic eA==",
      "x-forwarded-host": "evil.example",
      "accept-encoding": "gzip",
      "anthropic-beta": "prompt-caching-2024-07-31",
      "anthropic-version": "2023-06-01",
      "x-stainless-lang": "js",
    });
    expect(res.status).toBe(200);
    await res.text();
    const seen = model.requests.at(-1);
    expect(seen?.path).toBe("/v1/messages?beta=true");
    expect(seen?.headers["x-api-key"]).toBe(REAL_KEY);
    for (const h of ["authorization", "cookie", "proxy-authorization", "x-forwarded-host"])
      expect(seen?.headers[h], h).toBeUndefined();
    expect(seen?.headers["accept-encoding"]).toBe("identity");
    expect(seen?.headers["anthropic-beta"]).toBe("prompt-caching-2024-07-31");
    expect(seen?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(seen?.headers["x-stainless-lang"]).toBe("js");
  });

  it("takes a token only from its own sandbox's address and only while it is granted", async () => {
    const mine = grantFor();
    addresses.set("sb-elsewhere", "10.99.0.2");
    const other = grantFor({ sandboxId: "sb-elsewhere" });
    const refused = await ask(other.token);
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.message).toContain("another sandbox");
    expect(other.costs).toEqual([]);
    expect((await ask(mine.token)).status).toBe(200);
    gateway.revoke(mine.token);
    expect((await ask(mine.token)).status).toBe(401);
    expect((await ask("sk-guess")).status).toBe(401);
  });

  it("holds each request's worst case: 30 concurrent requests spend no more than a small budget", async () => {
    const g = grantFor({ budgetUsd: 0.01 });
    model.setScript(
      (req) =>
        ({
          ...realistic(req.body, JSON.stringify(req.body).length),
          kind: "slow",
          text: "abcdef",
          chunks: 3,
          delayMs: 50,
        }) as FakeTurn,
    );
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, () => ask(g.token, messages("claude-test", 300))),
      );
      const statuses = answers.map((a) => a.status);
      await Promise.all(answers.map((a) => a.text()));
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 402).length).toBeGreaterThan(0);
      expect(g.spent()).toBeLessThanOrEqual(0.01);
      expect(g.failures.some((f) => f.code === "budget_exceeded")).toBe(true);
    } finally {
      model.setScript((req) => realistic(req.body, JSON.stringify(req.body ?? "").length));
    }
  });

  it("lowers max_tokens of a large request to what the budget still covers, and refuses once too little is left", async () => {
    const g = grantFor({ budgetUsd: 0.05 });
    const res = await ask(
      g.token,
      messages("claude-test", 64_000, { thinking: { type: "enabled", budget_tokens: 32_000 } }),
    );
    expect(res.status).toBe(200);
    await res.text();
    const sent = model.turns().at(-1)?.body;
    expect(sent.max_tokens).toBeLessThan(64_000);
    expect(sent.max_tokens).toBeGreaterThanOrEqual(256);
    expect(sent.thinking.budget_tokens).toBeLessThan(sent.max_tokens);
    expect(g.spent()).toBeLessThanOrEqual(0.05);
    // Each answer takes all it may: soon the rest no longer covers a useful answer.
    let last = 200;
    for (let i = 0; i < 30 && last === 200; i++) {
      const r = await ask(g.token, messages("claude-test", 64_000));
      last = r.status;
      if (last === 402) expect((await r.json()).error.message).toContain("session's budget");
      else await r.text();
    }
    expect(last).toBe(402);
    expect(g.spent()).toBeLessThanOrEqual(0.05);
    expect(g.spent()).toBeGreaterThan(0.04);
  });

  it("charges a stream the client cuts: its input and an upper bound of the output it delivered", async () => {
    const g = grantFor();
    model.setScript(() => ({ kind: "slow", text: "x".repeat(200), chunks: 200, delayMs: 20 }));
    try {
      const res = await ask(g.token, messages("claude-test", 1000));
      const reader = res.body?.getReader();
      await reader?.read();
      await reader?.read();
      await reader?.cancel();
      for (let i = 0; i < 100 && g.costs.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      // 100 input tokens (the fake's default) at 3 USD per MTok, and at least one output token.
      expect(g.costs[0]).toBeGreaterThan((100 * 3) / 1e6);
    } finally {
      model.setScript((req) => realistic(req.body, JSON.stringify(req.body ?? "").length));
    }
  });

  it("a tenant's monthly cap holds across its sessions and counts every session's spend", async () => {
    await store.createTenant({ id: "t-capped", name: "t-capped", createdAt: new Date().toISOString() });
    await store.setTenantBudget("t-capped", 0.004);
    const a = grantFor({ tenantId: "t-capped" });
    const b = grantFor({ tenantId: "t-capped" });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => ask((i % 2 ? a : b).token, messages("claude-test", 100))),
    );
    await Promise.all(answers.map((r) => r.text()));
    expect(answers.some((r) => r.status === 402)).toBe(true);
    const month = new Date().toISOString().slice(0, 7);
    const spent = await store.tenantSpend("t-capped", month);
    expect(spent).toBeCloseTo(a.spent() + b.spent(), 10);
    expect(spent).toBeLessThanOrEqual(0.004);
    expect(spent).toBeGreaterThan(0);
  });

  it("refuses at once when no model key is set, saying which setting", async () => {
    const bare = new ModelGateway({ upstream: model.url, apiKey: undefined, prices: new PriceTable(), log });
    const p = await bare.start(0);
    try {
      const failures: ModelFailure[] = [];
      const token = bare.grant({
        sessionId: "s",
        sandboxId: "x",
        tenantId: "t",
        budgetUsd: null,
        spentUsd: 0,
        onUsage: () => {},
        onFailure: (f) => failures.push(f),
      });
      const r = await fetch(`http://127.0.0.1:${p}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": token },
        body: messages("claude-test", 10),
      });
      expect(r.status).toBe(503);
      expect((await r.json()).error.message).toContain("BERTH_ANTHROPIC_API_KEY");
      expect(failures[0]?.code).toBe("model_unavailable");
    } finally {
      await bare.close();
    }
  });

  it("answers the demo model itself with no model key, never asking the upstream, at no cost", async () => {
    const bare = new ModelGateway({ upstream: model.url, apiKey: undefined, prices: new PriceTable(), log });
    const p = await bare.start(0);
    const before = model.requests.length;
    try {
      const failures: ModelFailure[] = [];
      const usage: number[] = [];
      const token = bare.grant({
        sessionId: "s",
        sandboxId: "x",
        tenantId: "t",
        budgetUsd: 0,
        spentUsd: 0,
        onUsage: (_u, cost) => usage.push(cost),
        onFailure: (f) => failures.push(f),
      });
      const r = await fetch(`http://127.0.0.1:${p}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": token },
        body: messages("berth-demo", 10),
      });
      expect(r.status).toBe(200);
      expect(await r.text()).toContain("[berth-demo: a scripted demo model, not Claude]");
      const stranger = await fetch(`http://127.0.0.1:${p}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "not-a-session-token" },
        body: messages("berth-demo", 10),
      });
      expect(stranger.status).toBe(401);
      expect(failures).toEqual([]);
      expect(usage).toEqual([]);
      expect(model.requests.length).toBe(before);
    } finally {
      await bare.close();
    }
  });

  it("reports an upstream error with its status", async () => {
    const g = grantFor();
    model.setScript(() => ({ kind: "error", status: 529, type: "overloaded_error", message: "busy" }));
    try {
      const r = await ask(g.token);
      expect(r.status).toBe(529);
      await r.text();
      expect(g.failures).toEqual([expect.objectContaining({ code: "model_error", upstreamStatus: 529 })]);
    } finally {
      model.setScript((req) => realistic(req.body, JSON.stringify(req.body ?? "").length));
    }
  });
});

describe("price table", () => {
  const t = new PriceTable();
  const mtok = (
    model: string,
    part: "inputTokens" | "outputTokens" | "cacheReadTokens" | "cacheCreationTokens",
  ) =>
    t.costOf(model, {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      [part]: 1e6,
    });

  it("matches a known id followed by a date or version, the longest first", () => {
    expect(mtok("claude-sonnet-4-5-20250929", "inputTokens")).toBe(3);
    expect(mtok("claude-opus-4-5-20251101", "outputTokens")).toBe(25);
    expect(mtok("claude-opus-4", "inputTokens")).toBe(15);
    expect(mtok("claude-opus-5-5", "cacheReadTokens")).toBeCloseTo(0.2, 10);
    expect(mtok("claude-haiku-4-5", "cacheCreationTokens")).toBeCloseTo(1.25, 10);
    expect(t.isKnown("claude-opus-4-5-evil")).toBe(false);
  });

  it("prices unknown models at the default (the SDK's, or BERTH_MODEL_PRICE_DEFAULT) and says so", () => {
    expect(t.isKnown("mystery")).toBe(false);
    expect(mtok("mystery", "inputTokens")).toBe(4);
    const dear = new PriceTable(undefined, JSON.stringify({ input: 15, output: 75 }));
    expect(
      dear.costOf("mystery", {
        inputTokens: 1e6,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
      }),
    ).toBe(15);
  });

  it("refuses a bad price setting naming it", () => {
    expect(() => new PriceTable("{")).toThrow(/BERTH_MODEL_PRICES/);
    expect(() => new PriceTable(JSON.stringify({ m: { input: "3" } }))).toThrow(/BERTH_MODEL_PRICES: m/);
    expect(() => new PriceTable(undefined, JSON.stringify({ input: -1, output: 1 }))).toThrow(
      /BERTH_MODEL_PRICE_DEFAULT/,
    );
  });
});
