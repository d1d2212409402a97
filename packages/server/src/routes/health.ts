import { requireMetricsReader } from "../auth/metrics-access.js";
import { metricsSnapshot } from "../metrics-snapshot.js";
import type { App, ServerContext } from "./context.js";

/**
 * Liveness, readiness and the OpenAPI document (no API key needed), and Prometheus metrics
 * (an admin key or the metrics token: they name tenants and sandboxes).
 */
export function healthRoutes(app: App, ctx: ServerContext): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({
    ok: true,
    runtime: ctx.runtime.name,
    version: ctx.version,
  }));
  // Readiness: the store answers a query and the runtime lists its sandboxes, each within 2 s.
  app.get("/readyz", { schema: { hide: true } }, async (_req, reply) => {
    const [store, runtime] = await Promise.all([
      probe(ctx, "store", () => ctx.store.getTenant("readyz")),
      probe(ctx, "runtime", () => ctx.runtime.list()),
    ]);
    const ok = store === "ok" && runtime === "ok";
    return reply.status(ok ? 200 : 503).send({ ok, store, runtime });
  });
  app.get("/metrics", { schema: { hide: true } }, async (req, reply) => {
    await requireMetricsReader(req, ctx.auth, ctx.config.metricsToken);
    return reply.type("text/plain; version=0.0.4").send(ctx.metrics.render(await metricsSnapshot(ctx)));
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

/** "ok", "failed" (the reason goes to the log, not to unauthenticated callers) or "timeout". */
async function probe(ctx: ServerContext, part: string, check: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("timeout"), 2_000);
  });
  try {
    return await Promise.race([check().then(() => "ok"), timeout]);
  } catch (err) {
    ctx.log.error({ part, err: String(err) }, "readiness check failed");
    return "failed";
  } finally {
    clearTimeout(timer);
  }
}
