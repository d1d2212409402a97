import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installErrorHandling } from "../http/errors.js";
import type { App } from "../routes/context.js";
import { webRoutes } from "../routes/web.js";
import { apiDocsRoutes } from "./api-docs-routes.js";

let app: App;

beforeAll(async () => {
  app = Fastify() as unknown as App;
  installErrorHandling(app);
  apiDocsRoutes(app);
  webRoutes(app, "/nonexistent-web-root");
  await app.ready();
});
afterAll(() => app?.close());

const get = (url: string) => app.inject({ method: "GET", url });

describe("/api-docs", () => {
  it("serves a page that loads Swagger UI from this server only, pointed at /openapi.json", async () => {
    const page = await get("/api-docs");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    const scripts = [...page.body.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(["/api-docs/swagger-ui-bundle.js", "/api-docs/init.js"]);
    expect(page.body).not.toMatch(/https?:\/\//);
    const init = await get("/api-docs/init.js");
    expect(init.body).toContain('url: "/openapi.json"');
    const bundle = await get("/api-docs/swagger-ui-bundle.js");
    expect(bundle.statusCode).toBe(200);
    expect(bundle.headers["content-type"]).toContain("text/javascript");
    expect(bundle.body).toContain("SwaggerUIBundle");
    expect((await get("/api-docs/swagger-ui.css")).statusCode).toBe(200);
  });

  it("serves only the bundle's named files: anything else is the API's 404, never the dashboard", async () => {
    for (const url of [
      "/api-docs/package.json",
      "/api-docs/..%2f..%2fpackage.json",
      "/api-docs/index.html",
      "/api-docs/x/y",
    ]) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(404);
      expect(r.body, url).not.toContain("swagger-ui-dist");
    }
  });
});
