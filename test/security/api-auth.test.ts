// Authentication happens after routing, on the path the router matched: encoded (`/%761/...`)
// and doubled (`//v1/...`) forms of every API path need a key like the path itself, never
// answer 500, and mutating ones are in the audit trail. Real server, real HTTP on loopback.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
const METRICS_TOKEN = "metrics-token-for-the-scraper-0123456789";

beforeAll(async () => {
  server = await startTestServer({ env: { BERTH_METRICS_TOKEN: METRICS_TOKEN } });
});

afterAll(async () => {
  await server?.stop();
});

/** One request with the path sent byte for byte as given (fetch would normalize it). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => {
        text += c.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The encoded and doubled forms of an API path. */
const variants = (path: string) => [
  path,
  path.replace("/v1/", "/%761/"),
  path.replace("/v1/", "/%76%31/"),
  `/${path}`,
  path.replace("/v1/", "/v1//"),
  path.replace("/v1/", "//%761/"),
];

describe("API authentication on the routed path", () => {
  it("answers 401 without a key on /%761/..., //v1/... and plain forms of templates, keys, sandboxes and audit", async () => {
    const seen: string[] = [];
    for (const path of ["/v1/templates", "/v1/keys", "/v1/sandboxes", "/v1/audit", "/v1/usage", "/v1/nope"])
      for (const p of variants(path)) {
        const r = await raw("GET", p);
        seen.push(`GET ${p} -> ${r.status}`);
        expect(r.status, seen.join("\n")).toBe(401);
        expect(JSON.parse(r.body).error.code).toBe("unauthorized");
      }
    // With a key the encoded form is the same endpoint (it is routed, not refused).
    const ok = await raw("GET", "/%761/templates", { authorization: `Bearer ${server.adminKey}` });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).items.map((t: { name: string }) => t.name)).toContain("default");
  });

  it("answers 401, never 500, on every route of the OpenAPI document without a key, in plain and encoded forms", async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const seen: string[] = [];
    let count = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith("/v1/")) continue;
      const concrete = path.replace(/\{[^}]+\}/g, "sb0000000000000000");
      for (const method of Object.keys(ops))
        for (const p of [concrete, concrete.replace("/v1/", "/%761/"), `/${concrete}`]) {
          const m = method.toUpperCase();
          const withBody = ["POST", "PUT", "PATCH"].includes(m);
          const r = withBody
            ? await raw(m, p, { "content-type": "application/json" }, "{}")
            : await raw(m, p);
          seen.push(`${method} ${p} -> ${r.status}`);
          count++;
          expect(r.status, seen.slice(-5).join("\n")).toBe(401);
        }
    }
    expect(count).toBeGreaterThan(60);
  });

  it("records refused mutating calls by route in the audit trail, encoded forms too", async () => {
    const sent = ["/%761/keys", "//v1/keys", "/v1/%73andboxes"];
    for (const p of sent) {
      const r = await raw("POST", p, { "content-type": "application/json" }, "{}");
      expect(r.status).toBe(401);
    }
    // Rows are written after the answer: wait for them, and say what was there on a miss.
    const rows: { path: string; status: number; tenant: string | null }[] = await waitFor(
      "the audit rows of the refused calls",
      async () => (await api(server, server.adminKey, "GET", "/v1/audit?limit=1000")).body.items,
      (items: { path: string }[]) => sent.every((p) => items.some((r) => r.path === p)),
      { timeoutMs: 10_000 },
    );
    for (const p of sent)
      expect(
        rows.find((r) => r.path === p),
        JSON.stringify(rows.map((r) => r.path)),
      ).toMatchObject({ status: 401, tenant: null });
  });
});

describe("/metrics needs a credential", () => {
  it("answers 401 without one and 403 to a tenant's key, naming no tenant or sandbox; the admin key and the metrics token read it", async () => {
    const key = (await api(server, server.adminKey, "POST", "/v1/keys", { tenant: "metrics-tenant" })).body
      .key;
    const sb = await api(server, key, "POST", "/v1/sandboxes", {});
    expect(sb.status).toBe(201);
    const scrape = async (authorization?: string) => {
      const r = await fetch(`${server.url}/metrics`, { headers: authorization ? { authorization } : {} });
      return { status: r.status, text: await r.text() };
    };
    // Per-sandbox series carry the tenant and sandbox labels once sampled: wait for them.
    const admin = await waitFor(
      `the sandbox's series in /metrics`,
      () => scrape(`Bearer ${server.adminKey}`),
      (m) => m.text.includes(sb.body.id),
    );
    expect(admin.status).toBe(200);
    expect(admin.text).toContain(`tenant="metrics-tenant"`);
    expect(admin.text).toContain(sb.body.id);
    const token = await scrape(`Bearer ${METRICS_TOKEN}`);
    expect(token.status).toBe(200);
    expect(token.text).toMatch(/^berth_sandboxes_live [1-9]/m);
    for (const [auth, status] of [
      [undefined, 401],
      ["Bearer ", 401],
      [`Bearer ${METRICS_TOKEN}x`, 401],
      [`Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString("base64")}`, 401],
      [`Bearer ${key}`, 403],
    ] as const) {
      const r = await scrape(auth);
      expect(r.status, `${auth}: ${r.text.slice(0, 200)}`).toBe(status);
      expect(r.text).not.toContain("metrics-tenant");
      expect(r.text).not.toContain(sb.body.id);
      expect(r.text).not.toContain("berth_");
    }
    await api(server, key, "DELETE", `/v1/sandboxes/${sb.body.id}`);
  });
});
