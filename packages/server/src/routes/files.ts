import { InvalidRequestError, NotFoundError, SandboxError } from "@berth/core";
import {
  FileList,
  MoveBody,
  PathBody,
  PathQuery,
  PathResult,
  RemoveQuery,
  SandboxParams,
  WatchQuery,
  WrittenFile,
} from "@berth/core/contract";
import { openEventStream } from "../http/sse.js";
import { limitedBody } from "../http/upload.js";
import type { App, ServerContext } from "./context.js";

/**
 * The file API. Every operation is carried out by berth-init inside the sandbox, as the sandbox
 * user, so paths (symlinks included) resolve in the sandbox's own mount namespace: the host is
 * not reachable whatever the path says.
 */
export function fileRoutes(app: App, ctx: ServerContext): void {
  const tags = ["files"];
  app.get(
    "/v1/sandboxes/:id/files/content",
    { schema: { tags, params: SandboxParams, querystring: PathQuery } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const { size, stream } = await client.read(req.query.path);
      return reply.header("content-length", size).type("application/octet-stream").send(stream);
    },
  );
  app.put(
    "/v1/sandboxes/:id/files/content",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: PathQuery,
        response: { 200: WrittenFile },
        description:
          "Raw body; missing parent directories are created; the file appears whole or not at all.",
      },
    },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const { size } = await client.write(req.query.path, limitedBody(req, ctx.config.maxUploadBytes));
      return { path: req.query.path, size };
    },
  );
  app.get(
    "/v1/sandboxes/:id/files",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: PathQuery,
        response: { 200: FileList },
      },
    },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const entry = await client.stat(req.query.path);
      if (entry.type !== "dir")
        throw new InvalidRequestError(`'${req.query.path}' is not a directory`, { field: "path" });
      return { entries: await client.list(req.query.path) };
    },
  );
  app.delete(
    "/v1/sandboxes/:id/files",
    { schema: { tags, params: SandboxParams, querystring: RemoveQuery } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      if (req.query.path === "/") throw new InvalidRequestError("refusing to remove '/'", { field: "path" });
      await client.remove(req.query.path, { recursive: req.query.recursive === "true" });
      return reply.status(204).send();
    },
  );
  app.get(
    "/v1/sandboxes/:id/files/watch",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: WatchQuery,
        description:
          "SSE: one message per change, data {type: create|modify|delete, path}, until the client leaves.",
      },
    },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const entry = await client.stat(req.query.path).catch(() => null);
      if (!entry) throw new NotFoundError("path", req.query.path);
      const watch = await client.watch(req.query.path, { recursive: req.query.recursive !== "false" });
      const stream = openEventStream(req, reply);
      let seq = 0;
      stream.onClose(() => watch.close());
      watch.on("event", (e: { type: string; path: string }) => {
        ctx.sandboxes.touch(req.params.id);
        stream.send(undefined, { type: e.type, path: e.path }, ++seq);
      });
      watch.on("error", (e: Error) => stream.sendError(e, (x) => new SandboxError(x.message)));
      watch.on("close", () => stream.end());
    },
  );
}

/** mkdir and move take JSON bodies, so they live outside the raw-body scope. */
export function fileOpRoutes(app: App, ctx: ServerContext): void {
  const tags = ["files"];
  app.post(
    "/v1/sandboxes/:id/files/mkdir",
    {
      schema: {
        tags,
        params: SandboxParams,
        body: PathBody,
        response: { 201: PathResult },
      },
    },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      await client.mkdir(req.body.path);
      return reply.status(201).send({ path: req.body.path });
    },
  );
  app.post(
    "/v1/sandboxes/:id/files/move",
    { schema: { tags, params: SandboxParams, body: MoveBody, response: { 200: MoveBody } } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      await client.move(req.body.from, req.body.to);
      return { from: req.body.from, to: req.body.to };
    },
  );
}
