// Operating Berth: JSON logs that name the tenant, sandbox and request but never a secret;
// Prometheus metrics that parse and move; the audit trail of mutating calls; readiness.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let tenantKey: string;
const call = (method: string, path: string, body?: unknown, key = server.adminKey) =>
  api(server, key, method, path, body);

interface Family {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; count?: string }>;
}
async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${server.adminKey}` },
  });
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text()) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}
const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) => {
  const f = m.get(name);
  const one = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return one === undefined ? undefined : Number(one.value);
};

beforeAll(async () => {
  server = await startTestServer();
  const k = await call("POST", "/v1/keys", { tenant: "ops-tenant" });
  tenantKey = k.body.key;
});

afterAll(async () => {
  await server?.stop();
});

describe("operating Berth", () => {
  it("logs JSON lines with the request id, tenant and sandbox id, and never a key or token", async () => {
    const s = await call("POST", "/v1/sandboxes", {}, tenantKey);
    expect(s.status).toBe(201);
    const id = s.body.id as string;
    const ex = await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["true"] }, tenantKey);
    expect(ex.status).toBe(200);
    const port = await call("POST", `/v1/sandboxes/${id}/ports`, { port: 8000 }, tenantKey);
    const token = port.body.token as string;
    // A proxied request with the token in the query, and a refused key: neither may be logged.
    await fetch(`${server.previewUrl}/p/${id}/8000/?token=${token}`);
    await call("GET", "/v1/sandboxes", undefined, `${tenantKey.slice(0, -4)}abcd`);
    await call("DELETE", `/v1/sandboxes/${id}`, undefined, tenantKey);

    const lines = server.logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const execLines = lines.filter(
      (l) =>
        (l.req as { url?: string } | undefined)?.url === `/v1/sandboxes/${id}/exec` || l.sandboxId === id,
    );
    const done = lines.find(
      (l) =>
        l.msg === "request completed" &&
        l.sandboxId === id &&
        (l.res as { statusCode: number }).statusCode === 200,
    );
    expect(execLines.length).toBeGreaterThan(0);
    expect(done).toMatchObject({ tenant: "ops-tenant", sandboxId: id, reqId: expect.any(String) });
    const all = server.logLines.join("\n");
    for (const secret of [server.adminKey, tenantKey, token, tenantKey.slice(0, -4)])
      expect(all.includes(secret)).toBe(false);
  });

  it("serves Prometheus metrics that parse, move when sandboxes are made, and show per-sandbox series", async () => {
    const before = await scrape();
    const creates0 = value(before, "berth_sandbox_creates_total") ?? 0;
    const s = await call("POST", "/v1/sandboxes", {});
    const id = s.body.id as string;
    await call("POST", `/v1/sandboxes/${id}/exec`, {
      cmd: ["sh", "-c", "head -c 3000000 /dev/zero > /workspace/f"],
    });
    const after = await scrape();
    expect(value(after, "berth_sandbox_creates_total")).toBe(creates0 + 1);
    expect(value(after, "berth_sandboxes", { state: "running" })).toBeGreaterThanOrEqual(1);
    expect(after.get("berth_exec_seconds")?.type).toBe("HISTOGRAM");
    expect(after.get("berth_sandbox_create_seconds")?.type).toBe("HISTOGRAM");
    expect(value(after, "berth_sandbox_memory_bytes", { sandbox: id })).toBeGreaterThan(0);
    expect(value(after, "berth_sandbox_disk_bytes", { sandbox: id })).toBeGreaterThan(3_000_000);
    expect(value(after, "berth_sandbox_cpu_seconds_total", { sandbox: id })).toBeGreaterThanOrEqual(0);
    expect(after.get("berth_sandbox_cpu_seconds_total")?.type).toBe("COUNTER");

    await call("POST", `/v1/sandboxes/${id}/hibernate`);
    await call("POST", `/v1/sandboxes/${id}/wake`);
    const woken = await scrape();
    expect(woken.get("berth_sandbox_wake_seconds")?.metrics[0]?.count).toBe(
      String(Number(after.get("berth_sandbox_wake_seconds")?.metrics[0]?.count ?? 0) + 1),
    );
    await call("DELETE", `/v1/sandboxes/${id}`);
    const gone = await scrape();
    expect(value(gone, "berth_sandbox_memory_bytes", { sandbox: id })).toBeUndefined();
  });

  it("keeps an audit trail of every mutating call, readable by admins only", async () => {
    const t0 = new Date().toISOString();
    const s = await call("POST", "/v1/sandboxes", {}, tenantKey);
    const id = s.body.id as string;
    await call("DELETE", `/v1/sandboxes/${id}`, undefined, tenantKey);
    await call("POST", "/v1/sandboxes", { resources: { cpus: "two" } }, tenantKey);
    await call("POST", "/v1/sandboxes", {}, "berth_nope");
    await call("GET", "/v1/sandboxes", undefined, tenantKey); // not mutating: not recorded

    const a = await call("GET", `/v1/audit?from=${encodeURIComponent(t0)}`);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    const rows = a.body.items as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.method, r.path, r.status, r.tenant])).toEqual([
      ["POST", "/v1/sandboxes", 201, "ops-tenant"],
      ["DELETE", `/v1/sandboxes/${id}`, 204, "ops-tenant"],
      ["POST", "/v1/sandboxes", 400, "ops-tenant"],
      ["POST", "/v1/sandboxes", 401, null],
    ]);
    expect(rows[0]).toMatchObject({
      at: expect.any(String),
      keyId: expect.any(String),
      requestId: expect.any(String),
    });
    const page = await call("GET", `/v1/audit?from=${encodeURIComponent(t0)}&limit=2`);
    expect(page.body.items).toHaveLength(2);
    const next = await call(
      "GET",
      `/v1/audit?from=${encodeURIComponent(t0)}&limit=2&cursor=${page.body.nextCursor}`,
    );
    expect(next.body.items.map((r: { status: number }) => r.status)).toEqual([400, 401]);

    expect((await call("GET", "/v1/audit", undefined, tenantKey)).status).toBe(403);
    const bad = await call("GET", "/v1/audit?from=yesterday");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/ISO 8601/);
  });

  it("answers /healthz and /readyz without a key", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const r = await fetch(`${server.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, store: "ok", runtime: "ok" });
  });
});
