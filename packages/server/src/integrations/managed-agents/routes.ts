import { CreateManagedAgentBody as CreateBody, ManagedAgentView as Integration } from "@berth/core/contract";
import { Type as T } from "@sinclair/typebox";
import type { App } from "../../routes/context.js";
import type { ManagedAgentsService } from "./registry.js";

const IdParams = T.Object({ id: T.String({ maxLength: 64 }) });

/** `/v1/integrations/managed-agents`: Berth as the worker of Claude Managed Agents environments. */
export function managedAgentRoutes(app: App, service: ManagedAgentsService): void {
  const tags = ["managed-agents"];
  const base = "/v1/integrations/managed-agents";
  app.post(base, { schema: { tags, body: CreateBody, response: { 201: Integration } } }, async (req, reply) =>
    reply.status(201).send(await service.create(req.caller, req.body)),
  );
  app.get(
    base,
    { schema: { tags, response: { 200: T.Object({ items: T.Array(Integration) }) } } },
    async (req) => ({ items: await service.list(req.caller.tenantId) }),
  );
  app.get(
    `${base}/:id`,
    { schema: { tags, params: IdParams, response: { 200: Integration } } },
    async (req) => service.get(req.caller.tenantId, req.params.id),
  );
  app.delete(
    `${base}/:id`,
    {
      schema: {
        tags,
        params: IdParams,
        querystring: T.Object({ force: T.Optional(T.Union([T.Literal("true"), T.Literal("false")])) }),
        response: { 200: Integration },
      },
    },
    async (req) => service.remove(req.caller.tenantId, req.params.id, req.query.force === "true"),
  );
}

/** The largest webhook body taken (its events are small JSON documents). */
const WEBHOOK_BODY_LIMIT = 256 * 1024;

/**
 * `POST /webhooks/managed-agents/:id`: the `session.status_run_started` webhook of an integration
 * in webhook mode. Outside `/v1`, it takes no API key: the signature, checked against the
 * integration's signing secret over the raw body, is its authentication.
 */
export function managedAgentWebhookRoutes(app: App, service: ManagedAgentsService): void {
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser("*", { parseAs: "string", bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
    raw.post(
      "/webhooks/managed-agents/:id",
      { schema: { tags: ["managed-agents"], params: IdParams } },
      async (req, reply) => {
        const headers: Record<string, string> = {};
        for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
          const v = req.headers[name];
          if (typeof v === "string") headers[name] = v;
        }
        const { id } = req.params as { id: string };
        await service.webhook(id, typeof req.body === "string" ? req.body : "", headers);
        return reply.status(204).send();
      },
    );
  });
}
