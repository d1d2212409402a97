import type { SnapshotRecord } from "@berth/core";
import { CreateSnapshotBody, ListOf, SandboxParams, Snapshot, SnapshotParams } from "@berth/core/contract";
import { Type as T } from "@sinclair/typebox";
import type { App, ServerContext } from "./context.js";

const view = (s: SnapshotRecord) => ({
  id: s.id,
  sandboxId: s.sandboxId,
  name: s.name,
  template: s.template,
  sizeBytes: s.sizeBytes,
  createdAt: s.createdAt,
});

/** Snapshots: capture a sandbox's files; create sandboxes from them with `fromSnapshot`. */
export function snapshotRoutes(app: App, ctx: ServerContext): void {
  const tags = ["snapshots"];
  app.post(
    "/v1/sandboxes/:id/snapshots",
    {
      schema: {
        tags,
        params: SandboxParams,
        body: T.Optional(CreateSnapshotBody),
        response: { 201: Snapshot },
      },
    },
    async (req, reply) => {
      const s = await ctx.snapshots.create(req.caller.tenantId, req.params.id, req.body?.name ?? null);
      return reply.status(201).send(view(s));
    },
  );
  app.get("/v1/snapshots", { schema: { tags, response: { 200: ListOf(Snapshot) } } }, async (req) => ({
    items: (await ctx.snapshots.list(req.caller.tenantId)).map(view),
  }));
  app.get(
    "/v1/snapshots/:snapshotId",
    {
      schema: {
        tags,
        params: SnapshotParams,
        response: { 200: Snapshot },
      },
    },
    async (req) => view(await ctx.snapshots.get(req.caller.tenantId, req.params.snapshotId)),
  );
  app.delete(
    "/v1/snapshots/:snapshotId",
    { schema: { tags, params: SnapshotParams } },
    async (req, reply) => {
      await ctx.snapshots.remove(req.caller.tenantId, req.params.snapshotId);
      return reply.status(204).send();
    },
  );
}
