import type { VolumeRecord } from "@berth/core";
import { Type as T } from "@sinclair/typebox";
import type { App, ServerContext } from "./context.js";

const Volume = T.Object({
  name: T.String(),
  sizeMiB: T.Integer(),
  usedBytes: T.Integer(),
  createdAt: T.String(),
});
const NameParams = T.Object({ name: T.String({ maxLength: 63 }) });

/** Volumes: named persistent directories mounted into sandboxes with `volumes: [{name, mountPath}]`. */
export function volumeRoutes(app: App, ctx: ServerContext): void {
  const tags = ["volumes"];
  const view = async (v: VolumeRecord) => ({
    name: v.name,
    sizeMiB: v.sizeMiB,
    usedBytes: await ctx.volumes.usedBytes(v),
    createdAt: v.createdAt,
  });
  app.post(
    "/v1/volumes",
    {
      schema: {
        tags,
        body: T.Object(
          {
            name: T.String({ minLength: 1, maxLength: 63 }),
            sizeMiB: T.Optional(T.Integer({ minimum: 16 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Volume },
      },
    },
    async (req, reply) => {
      const v = await ctx.volumes.create(req.caller.tenantId, req.body.name, req.body.sizeMiB ?? 1024);
      return reply.status(201).send(await view(v));
    },
  );
  app.get(
    "/v1/volumes",
    { schema: { tags, response: { 200: T.Object({ items: T.Array(Volume) }) } } },
    async (req) => ({
      items: await Promise.all((await ctx.volumes.list(req.caller.tenantId)).map(view)),
    }),
  );
  app.get(
    "/v1/volumes/:name",
    { schema: { tags, params: NameParams, response: { 200: Volume } } },
    async (req) => view(await ctx.volumes.get(req.caller.tenantId, req.params.name)),
  );
  app.delete("/v1/volumes/:name", { schema: { tags, params: NameParams } }, async (req, reply) => {
    await ctx.volumes.remove(req.caller.tenantId, req.params.name);
    return reply.status(204).send();
  });
}
