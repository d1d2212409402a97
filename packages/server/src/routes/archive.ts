import { PassThrough } from "node:stream";
import { InvalidRequestError, SandboxError } from "@berth/core";
import { PathQuery, PathResult, SandboxParams } from "@berth/core/contract";
import type { ExitStatus, ProcessStream } from "@berth/supervisor";
import { limitedBody } from "../http/upload.js";
import { OutputBuffer } from "../sandboxes/exec.js";
import type { App, ServerContext } from "./context.js";

function exited(p: ProcessStream): Promise<ExitStatus> {
  return new Promise((resolve, reject) => {
    p.on("exit", resolve);
    p.on("error", reject);
  });
}

/**
 * Directory trees as tar, made and unpacked by the sandbox's own `tar` running as the sandbox
 * user: a hostile archive (`../`, absolute names, symlink tricks) can at worst touch what that
 * user may touch inside the sandbox.
 */
export function archiveRoutes(app: App, ctx: ServerContext): void {
  const tags = ["files"];
  app.get(
    "/v1/sandboxes/:id/archive",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: PathQuery,
        description: "The directory as a tar stream.",
      },
    },
    async (req, reply) => {
      const { sandbox, client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const entry = await client.stat(req.query.path);
      if (entry.type !== "dir")
        throw new InvalidRequestError(`'${req.query.path}' is not a directory`, { field: "path" });
      const proc = await client.exec({
        cmd: ["tar", "-c", "-f", "-", "-C", req.query.path, "."],
        env: ctx.sandboxes.processEnv(sandbox),
      });
      const body = new PassThrough();
      proc.on("stdout", (b: Buffer) => {
        if (!body.write(b)) {
          proc.pause();
          body.once("drain", () => proc.resume());
        }
      });
      const stderr = new OutputBuffer(4096);
      proc.on("stderr", (b: Buffer) => stderr.add(b));
      exited(proc).then(
        (s) => {
          // tar exits 1 when files changed while read; the archive is still complete.
          if (s.exitCode === 0 || s.exitCode === 1) body.end();
          else body.destroy(new SandboxError(`tar failed: ${stderr.text().trim()}`));
        },
        (err) => body.destroy(err),
      );
      body.on("close", () => proc.close());
      return reply.type("application/x-tar").send(body);
    },
  );
  app.put(
    "/v1/sandboxes/:id/archive",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: PathQuery,
        response: { 200: PathResult },
        description: "Unpacks a tar body into the directory (created when missing).",
      },
    },
    async (req, reply) => {
      const { sandbox, client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const body = limitedBody(req, ctx.config.maxUploadBytes);
      await client.mkdir(req.query.path);
      const proc = await client.exec({
        cmd: ["tar", "-x", "-f", "-", "-C", req.query.path, "--no-same-owner", "--no-same-permissions"],
        env: ctx.sandboxes.processEnv(sandbox),
        stdin: true,
      });
      const stderr = new OutputBuffer(4096);
      proc.on("stderr", (b: Buffer) => stderr.add(b));
      let over = false;
      const done = exited(proc).finally(() => {
        over = true;
      });
      try {
        for await (const chunk of body) {
          // Once tar has exited (a refused member stops it early) its status is the answer: the
          // rest of the body is read and dropped. A broken connection shows up in `done`.
          if (over) continue;
          if (!proc.writeStdin(chunk as Buffer)) await proc.drained().catch(() => {});
        }
        if (!over) proc.endStdin();
      } catch (err) {
        proc.close();
        throw err;
      }
      const s = await done;
      if (s.exitCode !== 0)
        throw new InvalidRequestError(
          `the archive could not be unpacked: ${stderr.text().trim() || "tar failed"}`,
          {
            field: "body",
          },
        );
      return { path: req.query.path };
    },
  );
}
