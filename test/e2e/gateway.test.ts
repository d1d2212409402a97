/**
 * The model gateway as a boundary, end to end: a real server, real runc sandboxes, the real
 * Claude Agent SDK and `claude` binary, and a FAKE model server (test/fixtures/fake-model) as the
 * upstream. Sandboxed code is the attacker: it holds a session's token and aims the gateway at
 * whatever it likes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  isToolResult,
  MarkerScripts,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";

const REAL_KEY = `sk-ant-real-${Math.random().toString(36).slice(2)}-do-not-leak`;

/** Sends one request with a verbatim request target from inside a sandbox; prints the raw answer. */
const RAW_REQUEST = `
import socket, sys
host, port, token, method, target = sys.argv[1:6]
body = b'{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}]}'
s = socket.create_connection((host, int(port)), timeout=20)
head = f"{method} {target} HTTP/1.1\\r\\nHost: api.anthropic.com\\r\\nx-api-key: {token}\\r\\ncontent-type: application/json\\r\\ncontent-length: {len(body)}\\r\\nconnection: close\\r\\n\\r\\n"
s.sendall(head.encode() + body)
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
sys.stdout.write(data.decode(errors="replace"))
`;

let model: FakeModel;
let server: TestServer;
const scripts = new MarkerScripts();

beforeAll(async () => {
  model = await startFakeModel(scripts.route);
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: REAL_KEY, BERTH_ANTHROPIC_BASE_URL: model.url },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
});

const berth = (args: string[]) => runBerth(server, args);

const call = (method: string, path: string, body?: unknown, key = server.adminKey) =>
  api(server, key, method, path, body);
const until = (id: string, states: string[], key = server.adminKey) =>
  sessionIn((p) => call("GET", p, undefined, key), id, states);

async function sh(sandboxId: string, script: string, args: string[] = []) {
  const r = await call("POST", `/v1/sandboxes/${sandboxId}/exec`, {
    cmd: ["sh", "-c", script, "sh", ...args],
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { stdout: string; stderr: string; exitCode: number };
}

describe("model gateway from inside sandboxes", () => {
  it("a session's token reaches only the Messages API, only at the upstream, and only from its own sandbox", async () => {
    const marker = `leak-${Date.now()}`;
    // The agent's tool call hands its gateway URL and token to the test (as any code in the sandbox could).
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "done" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: {
              command: 'echo "$ANTHROPIC_BASE_URL $ANTHROPIC_API_KEY" > /home/user/gw',
              description: "x",
            },
          },
    );
    const created = await call("POST", "/v1/sessions", { prompt: marker, pattern: "long-running" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const idle = await until(created.body.id, ["idle", "failed", "completed"]);
    expect(idle.state, JSON.stringify(idle)).toBe("idle");
    const sandboxId = idle.sandboxId as string;
    const [base, token] = (await sh(sandboxId, "cat /home/user/gw")).stdout.trim().split(" ");
    const gw = new URL(base as string);
    const berthPort = new URL(server.url).port;
    await sh(sandboxId, `cat > /tmp/raw.py <<'EOF'\n${RAW_REQUEST}\nEOF`);
    const raw = async (sb: string, method: string, target: string) => {
      if (sb !== sandboxId) await sh(sb, `cat > /tmp/raw.py <<'EOF'\n${RAW_REQUEST}\nEOF`);
      const out = (
        await sh(sb, 'python3 /tmp/raw.py "$@"', [gw.hostname, gw.port, token as string, method, target])
      ).stdout;
      return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1] ?? 0), out };
    };
    const before = model.requests.length;
    for (const [method, target] of [
      ["GET", `http://127.0.0.1:${berthPort}/metrics`],
      ["GET", `//127.0.0.1:${berthPort}/metrics`],
      ["POST", `http://127.0.0.1:${berthPort}/v1/messages`],
      ["POST", `//127.0.0.1:${berthPort}/v1/messages`],
      ["POST", "/%76%31/messages"],
      ["GET", "/v1/models"],
      ["POST", "/v1/files"],
      ["POST", "/v1/messages/batches"],
      ["GET", "/v1/organizations/me"],
    ] as const) {
      const r = await raw(sandboxId, method, target);
      expect(r.status, `${method} ${target}: ${r.out}`).toBe(404);
      expect(r.out).not.toContain("berth_");
      expect(r.out).not.toContain(REAL_KEY);
    }
    expect(model.requests.length).toBe(before);
    // The right call from the right sandbox goes through, with the real key on the upstream side only.
    const ok = await raw(sandboxId, "POST", "/v1/messages");
    expect(ok.status, ok.out).toBe(200);
    expect(ok.out).not.toContain(REAL_KEY);
    expect(model.requests.at(-1)?.headers["x-api-key"]).toBe(REAL_KEY);
    // The same token from another sandbox of the same tenant is refused and reaches nobody.
    const other = await call("POST", "/v1/sandboxes", {});
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    const count = model.requests.length;
    const stolen = await raw(other.body.id, "POST", "/v1/messages");
    expect(stolen.status, stolen.out).toBe(403);
    expect(stolen.out).toContain("another sandbox");
    expect(model.requests.length).toBe(count);
    // Once the session ends its token is dead, in its own sandbox too.
    expect((await call("DELETE", `/v1/sessions/${created.body.id}`)).status).toBe(204);
    expect((await raw(sandboxId, "POST", "/v1/messages")).status).toBe(401);
    await call("DELETE", `/v1/sandboxes/${other.body.id}`);
    await call("DELETE", `/v1/sandboxes/${sandboxId}`);
  }, 180_000);

  it("Berth's token cost of a session equals the Agent SDK's total_cost_usd for Haiku, Sonnet and Opus", async () => {
    const usage = {
      input_tokens: 1234,
      output_tokens: 567,
      cache_read_input_tokens: 8910,
      cache_creation_input_tokens: 1112,
    };
    for (const family of ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"]) {
      const marker = `price-${family}-${Date.now()}`;
      scripts.set(marker, () => ({ kind: "text", text: "priced", usage }));
      const created = await call("POST", "/v1/sessions", { prompt: marker, agent: { model: family } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const done = await until(created.body.id, ["completed", "failed"]);
      expect(done.state, JSON.stringify(done)).toBe("completed");
      expect(Object.keys(done.result.modelUsage)).toEqual([family]);
      expect(done.cost.tokensUsd, family).toBeGreaterThan(0);
      expect(done.cost.tokensUsd, family).toBeCloseTo(done.result.total_cost_usd, 9);
    }
  }, 180_000);

  it("a tenant over its monthly budget starts no new session (402 budget_exceeded) and sees what it spent", async () => {
    const key = await call("POST", "/v1/keys", { tenant: `capped-${Date.now()}` });
    expect(key.status).toBe(201);
    const tenant = key.body.tenant as string;
    const marker = `cap-${Date.now()}`;
    scripts.set(marker, () => ({ kind: "text", text: "spent" }));
    const first = await call("POST", "/v1/sessions", { prompt: marker }, key.body.key);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const done = await until(first.body.id, ["completed", "failed"], key.body.key);
    expect(done.state).toBe("completed");
    const mine = await call("GET", `/v1/tenants/${tenant}`, undefined, key.body.key);
    expect(mine.status).toBe(200);
    expect(mine.body.spentUsd).toBeCloseTo(done.cost.tokensUsd, 9);
    expect(mine.body.monthlyBudgetUsd).toBeNull();
    // Only an admin sets a cap; a tenant cannot lift its own.
    expect(
      (await call("PATCH", `/v1/tenants/${tenant}`, { monthlyBudgetUsd: null }, key.body.key)).status,
    ).toBe(403);
    // The admin caps it below what it spent, with the CLI.
    const capped = await berth(["tenants", "budget", tenant, "--monthly", String(done.cost.tokensUsd / 2)]);
    expect(capped.code, capped.stderr).toBe(0);
    expect(capped.stdout).toContain(tenant);
    expect((await berth(["tenants", "budget", tenant])).code).toBe(2);
    const shown = await berth(["--json", "tenants", "show", tenant]);
    expect(JSON.parse(shown.stdout).monthlyBudgetUsd).toBeCloseTo(done.cost.tokensUsd / 2, 12);
    const refused = await call("POST", "/v1/sessions", { prompt: marker }, key.body.key);
    expect(refused.status, JSON.stringify(refused.body)).toBe(402);
    expect(refused.body.error.code).toBe("budget_exceeded");
    expect(refused.body.error.message).toContain("monthly model budget");
    // Raising the cap lets the tenant start again.
    await call("PATCH", `/v1/tenants/${tenant}`, { monthlyBudgetUsd: 100 });
    const again = await call("POST", "/v1/sessions", { prompt: marker }, key.body.key);
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    await until(again.body.id, ["completed", "failed"], key.body.key);
    const all = await call("GET", "/v1/tenants");
    expect(all.body.items.map((t: any) => t.id)).toContain(tenant);
    expect((await call("GET", "/v1/tenants", undefined, key.body.key)).status).toBe(403);
  }, 180_000);
});
