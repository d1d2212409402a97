import { Type as T } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { streamsBodies } from "../http/body-timeout.js";
import type { App, ServerContext } from "../routes/context.js";
import { EnvdTokens } from "./access-token.js";
import { controlPlaneRoutes } from "./control-plane.js";
import { resolveEnvdCall } from "./envd/auth.js";
import { mountConnect } from "./envd/connect-mount.js";
import type { EnvdServices } from "./envd/connect-services.js";
import { filesRoutes } from "./envd/files-rest.js";
import { ProcessTable } from "./envd/process-table.js";
import { resolveSignedCall, type SignedOperation, type SignedQuery } from "./envd/signed-urls.js";
import { e2bErrorHandler, e2bNotFound, envdErrorHandler, envdFileUrlErrorHandler } from "./errors.js";
import { e2bCaller, newE2bKey } from "./keys.js";

/** Where the E2B surface lives on Berth's port: E2B_API_URL is `<server>/e2b`. */
export const E2B_API_PREFIX = "/e2b";
/** E2B_SANDBOX_URL is `<server>/e2b/envd`: every sandbox's data plane, told apart by `E2b-Sandbox-Id`. */
export const E2B_SANDBOX_PREFIX = "/e2b/envd";

/**
 * Serves E2B's API on Berth's port so the `e2b` SDKs run unchanged: the control plane under
 * `/e2b` (X-API-Key) and the sandboxes' data plane ("envd") under `/e2b/envd`, plus
 * `POST /v1/e2b/keys`, which makes an E2B-format key for the caller's tenant.
 */
export async function installE2b(app: App, ctx: ServerContext): Promise<void> {
  const tokens = await EnvdTokens.load(ctx.config.dataDir);
  const table = new ProcessTable();
  // Loaded by the first data-plane call (see connect-services.ts); undefined until then.
  let services: EnvdServices | undefined;
  // Bound lazily: the OpenAPI document is built with inert services that must not be touched.
  const processEnv: typeof ctx.sandboxes.processEnv = (sandbox, extra) =>
    ctx.sandboxes.processEnv(sandbox, extra);
  const running = async (id: string) => (await ctx.store.getSandbox(id))?.state === "running";

  app.post(
    "/v1/e2b/keys",
    {
      schema: {
        tags: ["e2b"],
        description: "Makes an API key in E2B's format (`e2b_` + 40 hex) for the caller's tenant.",
        response: { 201: T.Object({ id: T.String(), key: T.String(), tenantId: T.String() }) },
      },
    },
    async (req, reply) => {
      const { key, record } = newE2bKey(req.caller.tenantId);
      await ctx.store.createApiKey(record);
      return reply.status(201).send({ id: record.id, key, tenantId: record.tenantId });
    },
  );

  await app.register(
    async (scope: App) => {
      scope.setErrorHandler(e2bErrorHandler);
      scope.setNotFoundHandler(e2bNotFound);
      scope.addHook("onRequest", async (req) => {
        if (req.routeOptions.url === `${E2B_API_PREFIX}/health`) return;
        req.caller = await e2bCaller(ctx.store, req.headers["x-api-key"]);
      });
      controlPlaneRoutes(scope, ctx, tokens);
    },
    { prefix: E2B_API_PREFIX },
  );

  await app.register(
    async (scope: App) => {
      // Bodies stay streams: uploads are written as they arrive, Connect reads its own.
      scope.removeAllContentTypeParsers();
      streamsBodies(scope);
      scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
      scope.setErrorHandler(envdErrorHandler);
      scope.setNotFoundHandler(e2bNotFound);
      // envd's health check: 204 while the sandbox runs, 502 when it is paused or gone.
      scope.get("/health", { schema: { hide: true } }, async (req, reply) => {
        await resolveEnvdCall(req, ctx, tokens);
        return reply.status(204).send();
      });
      scope.addHook("preHandler", async (req) => {
        if (req.routeOptions.url === `${E2B_SANDBOX_PREFIX}/health`) return;
        if (isSignedFileRequest(req)) await resolveSignedCall(req, ctx, tokens, operationOf(req));
        else await resolveEnvdCall(req, ctx, tokens);
      });
      filesRoutes(scope, ctx);
      mountConnect(scope, async () => {
        const { envdServices } = await import("./envd/connect-services.js");
        services = envdServices(table, processEnv, running);
        return (router) => services?.routes(router);
      });
    },
    { prefix: E2B_SANDBOX_PREFIX },
  );

  // Signed file URLs: the SDK builds them on E2B_SANDBOX_URL's origin (`new URL("/files", ...)`
  // drops the path), so `/files` is also served at the root, for signed requests only.
  await app.register(async (scope: App) => {
    scope.removeAllContentTypeParsers();
    streamsBodies(scope);
    scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
    scope.setErrorHandler(envdFileUrlErrorHandler);
    scope.addHook("preHandler", async (req) => {
      await resolveSignedCall(req, ctx, tokens, operationOf(req));
    });
    filesRoutes(scope, ctx);
  });

  app.addHook("preClose", async () => {
    table.closeAll();
    services?.closeAll();
  });
}

/** A `/files` request that carries a URL signature instead of an access token. */
function isSignedFileRequest(req: FastifyRequest): boolean {
  const q = req.query as SignedQuery | undefined;
  return (
    req.routeOptions.url === `${E2B_SANDBOX_PREFIX}/files` && !!q?.signature && !req.headers["x-access-token"]
  );
}

/** What a signed file URL is used for: GET reads, POST writes. */
function operationOf(req: FastifyRequest): SignedOperation {
  return req.method === "POST" ? "write" : "read";
}
