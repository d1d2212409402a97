import type { VolumeRecord } from "@berth/core";
import { CreateVolumeBody, ListOf, Volume, VolumeParams } from "@berth/core/contract";
import type { App, ServerContext } from "./context.js";

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
        body: CreateVolumeBody,
        response: { 201: Volume },
      },
    },
    async (req, reply) => {
      const v = await ctx.volumes.create(req.caller.tenantId, req.body.name, req.body.sizeMiB ?? 1024);
      return reply.status(201).send(await view(v));
    },
  );
  app.get("/v1/volumes", { schema: { tags, response: { 200: ListOf(Volume) } } }, async (req) => ({
    items: await Promise.all((await ctx.volumes.list(req.caller.tenantId)).map(view)),
  }));
  app.get(
    "/v1/volumes/:name",
    { schema: { tags, params: VolumeParams, response: { 200: Volume } } },
    async (req) => view(await ctx.volumes.get(req.caller.tenantId, req.params.name)),
  );
  app.delete("/v1/volumes/:name", { schema: { tags, params: VolumeParams } }, async (req, reply) => {
    await ctx.volumes.remove(req.caller.tenantId, req.params.name);
    return reply.status(204).send();
  });
}
