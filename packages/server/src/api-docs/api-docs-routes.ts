import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { App } from "../routes/context.js";

/**
 * Swagger UI's files, from the npm package's own bundle (no CDN: servers may have no internet).
 * Found by resolving the package, not loading it: its main module evaluates the 1.5 MB bundle
 * (about a second of every server start here) only to say where it lies.
 */
const SWAGGER_UI_DIR = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist"));

/** The only files of the bundle served, by the name the page asks for. */
const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

/** The page's own script (a file, not inline: the page's CSP allows only this server's scripts). */
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#api",
  deepLinking: true,
  tryItOutEnabled: false,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth API reference</title>
<link rel="icon" href="/api-docs/favicon-32x32.png">
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
<div id="api"></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/init.js"></script>
</body>
</html>
`;

const HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
};

/**
 * `/api-docs`: the OpenAPI document (`/openapi.json`) as a readable page, rendered by Swagger UI
 * from its npm package. Like the document itself it needs no API key; "try it out" is off.
 */
export function apiDocsRoutes(app: App): void {
  app.get("/api-docs", { schema: { hide: true } }, async (_req, reply) =>
    reply.headers(HEADERS).type("text/html; charset=utf-8").send(PAGE),
  );
  app.get("/api-docs/init.js", { schema: { hide: true } }, async (_req, reply) =>
    reply.headers(HEADERS).type("text/javascript; charset=utf-8").send(INIT_SCRIPT),
  );
  app.get<{ Params: { file: string } }>("/api-docs/:file", { schema: { hide: true } }, async (req, reply) => {
    const type = ASSETS[req.params.file];
    if (!type) return reply.callNotFound();
    return reply
      .headers(HEADERS)
      .type(type)
      .send(await readFile(join(SWAGGER_UI_DIR, req.params.file)));
  });
}
