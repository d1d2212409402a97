import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyReply, FastifyRequest } from "fastify";
import { routedPath } from "../http/request-path.js";
import type { App } from "./context.js";

/** Where `npm run build` puts the dashboard (the same place from src/ and dist/). */
export const WEB_ROOT = fileURLToPath(new URL("../../../web/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** API, proxy and operations paths never fall back to the page: they answer their own 404. */
const NOT_THE_PAGE = /^\/(v1|p|api-docs)(\/|$)|^\/(metrics|healthz|readyz|openapi\.json)$/;

/**
 * The page may only load its own scripts and talk to this server (the API key lives in its
 * sessionStorage, so no third-party script may run beside it). 'self' is the API's origin only:
 * sandboxes' pages are served on the preview listener or preview hosts, never here, so nothing
 * a sandbox serves is trusted (WebSockets too: 'self' covers ws: to the same host and port).
 * xterm.js adds style elements.
 */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/**
 * The dashboard: the built single-page app's files from `root`, and its `index.html` for any
 * other GET that is not an API path (the page routes itself). No build happens at runtime.
 */
export function webRoutes(app: App, root = WEB_ROOT): void {
  const base = resolve(root);
  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    // Decoded first: `/%761/x` is an API path, not a page.
    const rel = routedPath(req.url);
    if (rel === undefined || NOT_THE_PAGE.test(rel)) return reply.callNotFound();
    const file = resolve(base, `.${rel}`);
    const inside = file === base || file.startsWith(base + sep);
    if (inside && file !== base && (await isFile(file))) return send(reply, file);
    // A missing asset is a 404; any other path is a page of the app.
    if (extname(rel) !== "") return reply.callNotFound();
    const index = join(base, "index.html");
    if (!(await isFile(index)))
      return reply
        .status(503)
        .type("text/plain; charset=utf-8")
        .send("The dashboard is not built: run `npm run build`.\n");
    return send(reply, index);
  };
  app.get("/", { schema: { hide: true } }, serve);
  app.get("/*", { schema: { hide: true } }, serve);
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function send(reply: FastifyReply, file: string) {
  const ext = extname(file);
  void reply.headers(PAGE_HEADERS);
  // File names are not hashed: the browser revalidates each time (cheap, and never stale).
  void reply.header("cache-control", "no-cache");
  return reply.type(TYPES[ext] ?? "application/octet-stream").send(await readFile(file));
}
