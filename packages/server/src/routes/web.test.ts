import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installErrorHandling } from "../http/errors.js";
import type { App } from "./context.js";
import { webRoutes } from "./web.js";

let dir: string;
let app: App;

beforeAll(async () => {
  dir = mkdtempSync("/tmp/berth-web-");
  mkdirSync(join(dir, "dist"));
  writeFileSync(join(dir, "dist/index.html"), "<!doctype html><title>Berth</title>");
  writeFileSync(join(dir, "dist/app.js"), "console.log('berth')");
  writeFileSync(join(dir, "secret.txt"), "outside the web root");
  app = Fastify() as unknown as App;
  installErrorHandling(app);
  app.get("/v1/sandboxes", async () => ({ items: [] }));
  webRoutes(app, join(dir, "dist"));
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (url: string) => app.inject({ method: "GET", url });

describe("dashboard files", () => {
  it("serves the built page at / and its assets with their types and a strict CSP", async () => {
    const page = await get("/");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.body).toContain("<title>Berth</title>");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    const js = await get("/app.js");
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toContain("text/javascript");
  });

  it("answers the page for the app's own paths, and 404 for missing assets", async () => {
    for (const path of ["/sandboxes", "/sandboxes/sb_123?tab=files", "/usage"]) {
      const r = await get(path);
      expect(r.statusCode, path).toBe(200);
      expect(r.body).toContain("<title>Berth</title>");
    }
    expect((await get("/missing.js")).statusCode).toBe(404);
  });

  it("leaves API, proxy and operations paths to their own routes and 404s", async () => {
    expect((await get("/v1/sandboxes")).json()).toEqual({ items: [] });
    for (const path of ["/v1/nope", "/p/sb_1/8000/", "/metrics", "/healthz", "/openapi.json"]) {
      const r = await get(path);
      expect(r.statusCode, path).toBe(404);
      expect(r.json().error.code).toBe("not_found");
    }
  });

  it("never serves a file outside its root (dot-dot, encoded or not)", async () => {
    for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt"]) {
      const r = await get(path);
      expect(r.body, path).not.toContain("outside the web root");
    }
  });

  it("says how to build the page when it is not built", async () => {
    const bare = Fastify() as unknown as App;
    webRoutes(bare, join(dir, "not-built"));
    const r = await bare.inject({ method: "GET", url: "/" });
    expect(r.statusCode).toBe(503);
    expect(r.body).toContain("npm run build");
    await bare.close();
  });
});
