import type { App, ServerContext } from "./context.js";

/** Liveness, Prometheus metrics and the OpenAPI document: no API key needed. */
export function healthRoutes(app: App, ctx: ServerContext): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({
    ok: true,
    runtime: ctx.runtime.name,
    version: ctx.version,
  }));
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) =>
    reply.type("text/plain; version=0.0.4").send(ctx.metrics.render()),
  );
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}
