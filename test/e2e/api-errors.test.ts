import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let sandboxId: string;

beforeAll(async () => {
  server = await startTestServer();
  const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", {});
  expect(r.status).toBe(201);
  sandboxId = r.body.id;
});

afterAll(async () => {
  await server?.stop();
});

/** Every refusal has the contract's shape: `{error: {code, message}}`. */
function expectError(r: { status: number; body: any }, status: number, code: string, field?: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe("string");
  expect(r.body.error.message.length).toBeGreaterThan(5);
  if (field) expect(r.body.error.details?.field).toBe(field);
}

describe("bad input gets the contract's error shape", () => {
  const sb = () => `/v1/sandboxes/${sandboxId}`;
  const cases: [string, string, () => string, unknown, number, string, string?][] = [
    ["unknown field", "POST", () => "/v1/sandboxes", { cpu: 1 }, 400, "invalid_request", "cpu"],
    [
      "cpus as a string",
      "POST",
      () => "/v1/sandboxes",
      { resources: { cpus: "2" } },
      400,
      "invalid_request",
      "resources.cpus",
    ],
    [
      "cpus over the server maximum",
      "POST",
      () => "/v1/sandboxes",
      { resources: { cpus: 100 } },
      400,
      "invalid_request",
      "resources.cpus",
    ],
    [
      "memory below the minimum",
      "POST",
      () => "/v1/sandboxes",
      { resources: { memoryMiB: 1 } },
      400,
      "invalid_request",
      "resources.memoryMiB",
    ],
    [
      "unknown template",
      "POST",
      () => "/v1/sandboxes",
      { template: "nope" },
      400,
      "invalid_request",
      "template",
    ],
    ["bad env name", "POST", () => "/v1/sandboxes", { env: { "A-B": "x" } }, 400, "invalid_request"],
    [
      "unknown volume",
      "POST",
      () => "/v1/sandboxes",
      { volumes: [{ name: "nosuchvolume", mountPath: "/data" }] },
      404,
      "not_found",
    ],
    [
      "unknown egress",
      "POST",
      () => "/v1/sandboxes",
      { network: { egress: "everything" } },
      400,
      "invalid_request",
    ],
    [
      "timeout over the maximum",
      "POST",
      () => "/v1/sandboxes",
      { timeoutSeconds: 10 ** 9 },
      400,
      "invalid_request",
      "timeoutSeconds",
    ],
    ["cmd missing", "POST", () => `${sb()}/exec`, {}, 400, "invalid_request", "cmd"],
    ["cmd empty", "POST", () => `${sb()}/exec`, { cmd: [] }, 400, "invalid_request", "cmd"],
    ["cmd as a string", "POST", () => `${sb()}/exec`, { cmd: "ls" }, 400, "invalid_request", "cmd"],
    [
      "negative timeout",
      "POST",
      () => `${sb()}/exec`,
      { cmd: ["true"], timeoutMs: -1 },
      400,
      "invalid_request",
      "timeoutMs",
    ],
    // Root is asked for at create (`root: true`); a sandbox made without it refuses root.
    [
      "root user in a sandbox made without root",
      "POST",
      () => `${sb()}/exec`,
      { cmd: ["true"], user: "root" },
      403,
      "forbidden",
      undefined,
    ],
    ["relative path", "GET", () => `${sb()}/files?path=etc`, undefined, 400, "invalid_request", "path"],
    ["missing path", "GET", () => `${sb()}/files/content`, undefined, 400, "invalid_request", "path"],
    [
      "unknown sandbox",
      "POST",
      () => "/v1/sandboxes/sbnosuchsandbox00/exec",
      { cmd: ["true"] },
      404,
      "not_found",
    ],
    ["unknown process", "GET", () => `${sb()}/processes/99999`, undefined, 404, "not_found"],
    ["missing file", "GET", () => `${sb()}/files/content?path=/nope`, undefined, 404, "not_found"],
    [
      "unknown signal",
      "POST",
      () => `${sb()}/processes/1/signal`,
      { signal: "SIGFOO" },
      400,
      "invalid_request",
      "signal",
    ],
    ["unknown endpoint", "GET", () => "/v1/nothing-here", undefined, 404, "not_found"],
    [
      "volume over a system directory",
      "POST",
      () => "/v1/sandboxes",
      { volumes: [{ name: "x", mountPath: "/usr/lib" }] },
      400,
      "invalid_request",
      "volumes.mountPath",
    ],
  ];
  for (const [name, method, path, body, status, code, field] of cases)
    it(`${name} -> ${status} ${code}`, async () => {
      expectError(await api(server, server.adminKey, method, path(), body), status, code, field);
    });

  it("a body that is not JSON -> 400 invalid_request", async () => {
    expectError(await api(server, server.adminKey, "POST", "/v1/sandboxes", "{nope"), 400, "invalid_request");
  });

  it("no key, a malformed key, an unknown key -> 401 unauthorized", async () => {
    for (const key of ["", "nope", `berth_${"a".repeat(40)}`])
      expectError(await api(server, key, "GET", "/v1/sandboxes"), 401, "unauthorized");
  });

  it("a JSON body over the limit -> 413 payload_too_large", async () => {
    const big = { cmd: ["true"], stdin: "x".repeat(17 * 1024 * 1024) };
    expectError(await api(server, server.adminKey, "POST", `${sb()}/exec`, big), 413, "payload_too_large");
  });

  it("an upload over BERTH_MAX_UPLOAD_BYTES is refused before it is read", async () => {
    const res = await fetch(`${server.url}${sb()}/files/content?path=/tmp/big`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.adminKey}`, "content-length": String(2 * 1024 ** 3) },
      body: "x",
    }).catch(() => null);
    // Either the 413 arrives or the server cut the connection short; never a 2xx.
    if (res) expect(res.status).toBe(413);
  });
});

describe("tenants", () => {
  it("tenant B gets 404 on tenant A's sandbox for every kind of call, and lists none of them", async () => {
    const made = await api(server, server.adminKey, "POST", "/v1/keys", { tenant: "bravo" });
    expect(made.status).toBe(201);
    expect(made.body.key).toMatch(/^berth_/);
    const b = made.body.key as string;
    const sb = `/v1/sandboxes/${sandboxId}`;
    for (const [method, path, body] of [
      ["GET", sb],
      ["PATCH", sb, { labels: { a: "b" } }],
      ["POST", `${sb}/exec`, { cmd: ["true"] }],
      ["GET", `${sb}/files?path=/`],
      ["GET", `${sb}/files/content?path=/etc/hostname`],
      ["GET", `${sb}/processes`],
      ["GET", `${sb}/events`],
      ["DELETE", sb],
    ] as [string, string, unknown?][])
      expectError(await api(server, b, method, path, body), 404, "not_found");
    const list = await api(server, b, "GET", "/v1/sandboxes");
    expect(list.body.items).toEqual([]);
    // The admin's sandbox is untouched.
    expect((await api(server, server.adminKey, "GET", sb)).body.state).toBe("running");
  });

  it("a tenant key cannot manage keys (403), and a revoked key stops working at once", async () => {
    const made = await api(server, server.adminKey, "POST", "/v1/keys", { tenant: "charlie" });
    const key = made.body.key as string;
    expectError(await api(server, key, "POST", "/v1/keys", { tenant: "charlie" }), 403, "forbidden");
    expect((await api(server, key, "GET", "/v1/sandboxes")).status).toBe(200);
    expect((await api(server, server.adminKey, "DELETE", `/v1/keys/${made.body.id}`)).status).toBe(204);
    expectError(await api(server, key, "GET", "/v1/sandboxes"), 401, "unauthorized");
    const keys = await api(server, server.adminKey, "GET", "/v1/keys");
    expect(JSON.stringify(keys.body)).not.toContain(key);
  });
});

describe("health and documents", () => {
  it("serves /healthz without a key, /openapi.json from the schemas, and /metrics (admin key) as Prometheus text", async () => {
    const h = await (await fetch(`${server.url}/healthz`)).json();
    expect(h).toMatchObject({ ok: true });
    expect(["runc", "crun"]).toContain(h.runtime);
    const doc = await (await fetch(`${server.url}/openapi.json`)).json();
    expect(doc.openapi).toMatch(/^3\.1/);
    expect(Object.keys(doc.paths)).toContain("/v1/sandboxes/{id}/exec");
    expect(JSON.stringify(doc.paths["/v1/sandboxes"].post)).toContain("memoryMiB");
    // Every operation documents the error body, with the registry's codes as its values.
    const failure = doc.paths["/v1/sandboxes/{id}/exec"].post.responses.default;
    expect(JSON.stringify(failure)).toContain('"disk_full"');
    expect(JSON.stringify(failure)).toContain('"replica_unavailable"');
    // Enums are listed: the egress modes of a new sandbox's network.
    expect(JSON.stringify(doc.paths["/v1/sandboxes"].post)).toMatch(/"none".*"allowlist".*"open"/);
    const m = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminKey}` } })
    ).text();
    expect(m).toMatch(/^berth_sandbox_creates_total [1-9]/m);
    expect(m).toMatch(/^berth_sandboxes_live [1-9]/m);
  });
});
