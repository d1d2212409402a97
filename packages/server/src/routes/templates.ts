import { BerthError, InternalError, NotFoundError, type TemplateInfo } from "@berth/core";
import {
  BuildTemplateBody,
  ImportTemplateQuery,
  ListOf,
  Template,
  TemplateParams,
} from "@berth/core/contract";
import { requireAdmin } from "../auth/authenticate.js";
import { openEventStream, wantsEventStream } from "../http/sse.js";
import { limitedBody } from "../http/upload.js";
import type { App, ServerContext } from "./context.js";

const view = (t: TemplateInfo) => ({
  name: t.name,
  sizeBytes: t.sizeBytes,
  createdAt: t.createdAt,
  source: t.source,
});

/**
 * Templates: listing and reading them needs any key; importing, building and deleting need an
 * admin key (a template is the server's: one copy on disk shared by every tenant's sandboxes).
 */
export function templateRoutes(app: App, ctx: ServerContext): void {
  const tags = ["templates"];
  app.get("/v1/templates", { schema: { tags, response: { 200: ListOf(Template) } } }, async () => ({
    items: (await ctx.templates.list()).map(view),
  }));
  app.get(
    "/v1/templates/:name",
    { schema: { tags, params: TemplateParams, response: { 200: Template } } },
    async (req) => {
      const t = await ctx.templates.get(req.params.name);
      if (!t) throw new NotFoundError("template", req.params.name);
      return view(t);
    },
  );
  app.delete(
    "/v1/templates/:name",
    {
      schema: {
        tags,
        params: TemplateParams,
        description:
          "Deletes a template (admin). 409 while any sandbox, hibernated ones too, is made from it.",
      },
    },
    async (req, reply) => {
      requireAdmin(req);
      await ctx.templates.remove(req.params.name);
      return reply.status(204).send();
    },
  );
  app.post(
    "/v1/templates/:name/build",
    {
      schema: {
        tags,
        params: TemplateParams,
        body: BuildTemplateBody,
        response: { 201: Template },
        description:
          "Builds a template (admin): `run` goes to `sh -c` in a new sandbox of `from` (open egress when the host allows it), and the files it leaves become the template; the sandbox is deleted afterwards. A failing script is 400 with its exitCode. With Accept: text/event-stream, progress streams as status ({message}), stdout and stderr ({data}) events and ends with a template event (the template) or an error event.",
      },
    },
    async (req, reply) => {
      requireAdmin(req);
      const b = req.body;
      const build = {
        name: req.params.name,
        from: b.from ?? "default",
        run: b.run,
        timeoutSeconds: b.timeoutSeconds ?? 1800,
        resources: b.resources,
      };
      const gone = new AbortController();
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      if (!wantsEventStream(req)) {
        const t = await ctx.templates.build(req.caller.tenantId, build, undefined, gone.signal);
        return reply.status(201).send(view(t));
      }
      // Checked before the 200 is committed, so a bad name or base is still a clean 4xx.
      await ctx.templates.checkBuild(build);
      const stream = openEventStream(req, reply);
      let seq = 0;
      try {
        const t = await ctx.templates.build(
          req.caller.tenantId,
          build,
          (p) => {
            if (p.kind === "status") stream.send("status", { message: p.message }, ++seq);
            else stream.send(p.kind, { data: p.data }, ++seq);
          },
          gone.signal,
        );
        stream.send("template", view(t), ++seq);
      } catch (err) {
        stream.sendError(err, () => new InternalError("the build failed"), ++seq);
        if (!(err instanceof BerthError))
          ctx.log.warn({ template: build.name, err: String(err) }, "template build failed");
      }
      stream.end();
    },
  );
}

/**
 * `PUT /v1/templates/:name?format=rootfs|docker|oci`: the archive as the raw request body
 * (streamed to disk, never held in memory; at most `BERTH_MAX_UPLOAD_BYTES`). Registered with
 * the raw-body parsers.
 */
export function templateUploadRoutes(app: App, ctx: ServerContext): void {
  app.put(
    "/v1/templates/:name",
    {
      schema: {
        tags: ["templates"],
        params: TemplateParams,
        querystring: ImportTemplateQuery,
        response: { 201: Template },
        description:
          "Imports a template (admin) from the request body: a root filesystem tar (format=rootfs), a `docker save` archive (docker) or an OCI image layout as a tar (oci); gzip, zstd or xz compression is detected. Layers are applied in order with their whiteouts. Members with absolute or `..` paths, or that would write through a symlink, refuse the whole archive (400); nothing of a failed import is kept.",
      },
    },
    async (req, reply) => {
      requireAdmin(req);
      const gone = new AbortController();
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const format = req.query.format ?? "rootfs";
      await ctx.templates.checkNewName(req.params.name);
      const body = limitedBody(req, ctx.config.maxUploadBytes);
      try {
        const t = await ctx.templates.import(req.params.name, format, body, gone.signal);
        return reply.status(201).send(view(t));
      } catch (err) {
        // A refused upload stops being read; drain the rest so the client, still sending, gets the
        // answer (Node only drains bodies nobody started reading), then the connection closes.
        if (!req.raw.complete) {
          reply.header("connection", "close");
          req.raw.unpipe();
          req.raw.resume();
        }
        throw err;
      }
    },
  );
}
