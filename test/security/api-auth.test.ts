// Authentication happens after routing, on the path the router matched: encoded (`/%761/...`)
// and doubled (`//v1/...`) forms of every API path need a key like the path itself, never
// answer 500, and mutating ones are in the audit trail. Real server, real HTTP on loopback.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
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
    const deadline = Date.now() + 10_000;
    let rows: { path: string; status: number; tenant: string | null }[] = [];
    while (Date.now() < deadline) {
      rows = (await api(server, server.adminKey, "GET", "/v1/audit?limit=1000")).body.items;
      if (sent.every((p) => rows.some((r) => r.path === p))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const p of sent)
      expect(
        rows.find((r) => r.path === p),
        JSON.stringify(rows.map((r) => r.path)),
      ).toMatchObject({ status: 401, tenant: null });
  });
});
