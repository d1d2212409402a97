import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import websocket from "@fastify/websocket";
import Fastify, { type FastifyBaseLogger } from "fastify";
import { apiDocsRoutes } from "./api-docs/api-docs-routes.js";
import { installE2b } from "./e2b/index.js";
import { auditCall } from "./http/audit-trail.js";
import { installBodyTimeout, streamsBodies } from "./http/body-timeout.js";
import { frameworkError, installErrorHandling } from "./http/errors.js";
import { documentErrors } from "./http/openapi.js";
import { isApiRequest, routedPath } from "./http/request-path.js";
import { AJV_OPTIONS } from "./http/validation.js";
import { managedAgentRoutes, managedAgentWebhookRoutes } from "./integrations/managed-agents/routes.js";
import { PortService } from "./proxy/ports.js";
import { createPreviewListener } from "./proxy/preview-listener.js";
import { installProxy, SandboxProxy } from "./proxy/proxy.js";
import { normalizeDomain } from "./proxy/target.js";
import { installReplicaRouter, ReplicaRouter } from "./replicas/router.js";
import { archiveRoutes } from "./routes/archive.js";
import { auditRoutes } from "./routes/audit.js";
import type { App, ServerContext } from "./routes/context.js";
import { execRoutes } from "./routes/exec.js";
import { fileOpRoutes, fileRoutes } from "./routes/files.js";
import { healthRoutes } from "./routes/health.js";
import { keyRoutes } from "./routes/keys.js";
import { portRoutes } from "./routes/ports.js";
import { processStdinRoutes } from "./routes/process-stdin.js";
import { processRoutes } from "./routes/processes.js";
import { ptyRoutes } from "./routes/pty.js";
import { sandboxRoutes } from "./routes/sandboxes.js";
import { sessionRoutes } from "./routes/sessions.js";
import { snapshotRoutes } from "./routes/snapshots.js";
import { templateRoutes, templateUploadRoutes } from "./routes/templates.js";
import { tenantRoutes } from "./routes/tenants.js";
import { volumeRoutes } from "./routes/volumes.js";
import { webRoutes } from "./routes/web.js";

/** JSON request bodies (uploads are streams and have their own limit). */
const JSON_BODY_LIMIT = 16 * 1024 * 1024;

/** The API's app and the preview listener's server (neither listening yet). */
export interface BuiltApp {
  app: App;
  /** Serves exposed ports by path on a port of its own (see createPreviewListener). */
  previews: Server;
}

/** Builds the HTTP app (schemas, auth, error shape, every route module) and the preview listener. */
export async function buildApp(ctx: ServerContext, logger: FastifyBaseLogger): Promise<BuiltApp> {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: JSON_BODY_LIMIT,
    requestIdHeader: "x-request-id",
    frameworkErrors: frameworkError,
    // A client must finish sending its request (headers and body: uploads up to 1 GiB) in this
    // time, so slow senders cannot pin sockets; responses (SSE, long execs) are not limited.
    requestTimeout: 15 * 60_000,
    // ...and its headers within 10 s (slowloris), checked every 2 s.
    http: { headersTimeout: 10_000, connectionsCheckingInterval: 2_000 },
    keepAliveTimeout: 65_000,
    // `//v1/keys` is `/v1/keys`: routed (and so authenticated) like it, never a different page.
    routerOptions: { ignoreDuplicateSlashes: true },
    ajv: { customOptions: AJV_OPTIONS },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandling(app);
  installBodyTimeout(app, ctx.config.bodyTimeoutMs);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Berth API", version: ctx.version, description: "Sandboxes for AI agents" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: documentErrors,
  });
  await app.register(websocket, {
    options: {
      maxPayload: 1 << 20,
      // Browsers cannot set headers on a WebSocket: the dashboard offers `berth` plus its key as a
      // second subprotocol (see bearerOf); only `berth` is chosen, so the key is never echoed.
      handleProtocols: (protocols) => (protocols.has("berth") ? "berth" : false),
    },
  });

  app.decorateRequest("caller", undefined as never);
  // After routing, on the route matched (or the decoded path): encoded or doubled forms of an
  // API path are authenticated like the path itself.
  app.addHook("onRequest", async (req, reply) => {
    if (!isApiRequest(req)) return;
    req.caller = await ctx.auth.authenticate(req);
    // Every later line about this request says whose it is (never the key itself).
    req.log = reply.log = req.log.child({ tenant: req.caller.tenantId, keyId: req.caller.keyId });
  });
  app.addHook("preHandler", async (req, reply) => {
    const id = (req.params as { id?: unknown } | undefined)?.id;
    const path = routedPath(req.url) ?? "";
    if (typeof id === "string" && path.startsWith("/v1/sandboxes/"))
      req.log = reply.log = req.log.child({ sandboxId: id });
    if (typeof id === "string" && path.startsWith("/v1/sessions/"))
      req.log = reply.log = req.log.child({ sessionId: id });
  });
  app.addHook("onResponse", async (req, reply) => auditCall(ctx.store, ctx.log, req, reply));
  healthRoutes(app, ctx);
  apiDocsRoutes(app);
  webRoutes(app);
  keyRoutes(app, ctx);
  tenantRoutes(app, ctx);
  auditRoutes(app, ctx);
  sandboxRoutes(app, ctx);
  snapshotRoutes(app, ctx);
  templateRoutes(app, ctx);
  volumeRoutes(app, ctx);
  execRoutes(app, ctx);
  processRoutes(app, ctx);
  ptyRoutes(app, ctx);
  fileOpRoutes(app, ctx);
  if (ctx.sessions) sessionRoutes(app, ctx, ctx.sessions.service, ctx.sessions.events);
  if (ctx.managedAgents) managedAgentRoutes(app, ctx.managedAgents);
  if (ctx.managedAgents) managedAgentWebhookRoutes(app, ctx.managedAgents);
  const previewDomain = normalizeDomain(ctx.config.previewDomain);
  let previews: Server | undefined;
  const ports = new PortService({
    ...ctx,
    previewDomain,
    previewPort: () => (previews?.address() as AddressInfo | null)?.port,
  });
  const proxy = new SandboxProxy({
    ports,
    sandboxes: ctx.sandboxes,
    runtime: ctx.runtime,
    events: ctx.events,
    metrics: ctx.metrics,
    previewDomain,
    log: ctx.log,
  });
  portRoutes(app, ctx, ports, proxy);
  // E2B's API (control plane under /e2b, sandboxes' data plane under /e2b/envd): see e2b/index.ts.
  await installE2b(app, ctx);
  // File uploads are raw streams of any content type, so these routes get their own parsers.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    streamsBodies(raw);
    raw.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
    raw.addContentTypeParser("application/json", (_req, payload, done) => done(null, payload));
    fileRoutes(raw, ctx);
    archiveRoutes(raw, ctx);
    templateUploadRoutes(raw, ctx);
    processStdinRoutes(raw, ctx);
  });
  // Exposed ports on preview hosts are served ahead of the router, upgrades included.
  installProxy(app.server, proxy);
  // Outermost: requests for another replica's sandboxes go there before anything else runs.
  const router = new ReplicaRouter({ store: ctx.store, replica: ctx.replica, previewDomain, log: ctx.log });
  installReplicaRouter(app.server, router, ctx.log, "api");
  previews = createPreviewListener(proxy, router, ctx.log);
  app.addHook("preClose", async () => proxy.close());
  return { app, previews };
}
