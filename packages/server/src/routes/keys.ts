import { type ApiKeyRecord, NotFoundError } from "@berth/core";
import { ApiKeyInfo, CreateKeyBody, KeyParams, ListOf } from "@berth/core/contract";
import { newApiKey } from "../auth/api-keys.js";
import { requireAdmin } from "../auth/authenticate.js";
import type { App, ServerContext } from "./context.js";

const view = (k: ApiKeyRecord) => ({
  id: k.id,
  tenant: k.tenantId,
  admin: k.admin,
  createdAt: k.createdAt,
  revokedAt: k.revokedAt,
});

/** API keys (admin only): a key belongs to one tenant; tenants are created on first use. */
export function keyRoutes(app: App, ctx: ServerContext): void {
  app.post(
    "/v1/keys",
    { schema: { tags: ["keys"], body: CreateKeyBody, response: { 201: ApiKeyInfo } } },
    async (req, reply) => {
      requireAdmin(req);
      const { tenant, admin = false } = req.body;
      if (!(await ctx.store.getTenant(tenant)))
        await ctx.store
          .createTenant({ id: tenant, name: tenant, createdAt: new Date().toISOString() })
          .catch(async (err) => {
            // Two first keys of one tenant at once: the other request created it.
            if (!(await ctx.store.getTenant(tenant))) throw err;
          });
      const { key, record } = newApiKey(tenant, admin);
      await ctx.store.createApiKey(record);
      return reply.status(201).send({ ...view(record), key });
    },
  );
  app.get("/v1/keys", { schema: { tags: ["keys"], response: { 200: ListOf(ApiKeyInfo) } } }, async (req) => {
    requireAdmin(req);
    return { items: (await ctx.store.listApiKeys()).map(view) };
  });
  app.delete("/v1/keys/:keyId", { schema: { tags: ["keys"], params: KeyParams } }, async (req, reply) => {
    requireAdmin(req);
    const keys = await ctx.store.listApiKeys();
    const k = keys.find((x) => x.id === req.params.keyId);
    if (!k) throw new NotFoundError("key", req.params.keyId);
    if (!k.revokedAt) await ctx.store.revokeApiKey(k.id, new Date().toISOString());
    ctx.auth.forget(k.id);
    return reply.status(204).send();
  });
}
