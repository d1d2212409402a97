import { posix } from "node:path";
import { Readable, Transform } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import { InvalidRequestError, NotSupportedError, PayloadTooLargeError, SETTINGS } from "@berth/core";
import { Type as T } from "@sinclair/typebox";
import { limitedBody } from "../../http/upload.js";
import type { App, ServerContext } from "../../routes/context.js";
import { envdCallOf } from "./auth.js";
import { sandboxPath } from "./call.js";

const FilesQuery = T.Object({
  path: T.Optional(T.String({ maxLength: 4096 })),
  username: T.Optional(T.String({ maxLength: 64 })),
  signature: T.Optional(T.String({ maxLength: 512 })),
  signature_expiration: T.Optional(T.String({ maxLength: 32 })),
});

/** What envd answers for each file written. */
const written = (path: string) => ({ name: posix.basename(path), type: "file", path });

/**
 * E2B's REST file transfer: `GET /files` (a file's bytes, gzip on request) and `POST /files`
 * (multipart with one part per file, or one raw octet-stream body, optionally gzip-encoded).
 */
export function filesRoutes(app: App, ctx: ServerContext): void {
  const schema = { hide: true, querystring: FilesQuery };
  app.get("/files", { schema }, async (req, reply) => {
    const { client } = envdCallOf(req);
    if (req.query.signature) throw new NotSupportedError("signed file URLs are not available in Berth");
    if (!req.query.path) throw new InvalidRequestError("path is required", { field: "path" });
    const path = sandboxPath(req.query.path);
    const { size, stream } = await client.read(path);
    reply.type("application/octet-stream");
    if (/\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))) {
      reply.header("content-encoding", "gzip");
      return reply.send(stream.pipe(createGzip()));
    }
    return reply.header("content-length", size).send(stream);
  });

  app.post("/files", { schema }, async (req) => {
    const { client } = envdCallOf(req);
    // File metadata lives in xattrs in E2B; berth-init has no xattr operation yet: refused, not dropped.
    if (Object.keys(req.headers).some((h) => h.startsWith("x-metadata-")))
      throw new NotSupportedError("file metadata (X-Metadata-* headers) is not available in Berth sandboxes");
    const max = ctx.config.maxUploadBytes;
    const type = String(req.headers["content-type"] ?? "");
    const encoding = String(req.headers["content-encoding"] ?? "identity").toLowerCase();
    if (encoding !== "identity" && encoding !== "gzip")
      throw new InvalidRequestError(`Content-Encoding ${encoding} is not supported (use gzip)`, {
        field: "Content-Encoding",
      });
    const body = limitedBody(req, max);
    const raw = encoding === "gzip" ? gunzipped(body, max) : body;
    if (type.startsWith("multipart/form-data")) {
      // Parsed by the platform's FormData (undici); the body is already capped at maxUploadBytes.
      const form = await new Response(Readable.toWeb(raw) as ReadableStream, {
        headers: { "content-type": type },
      })
        .formData()
        .catch(() => {
          throw new InvalidRequestError("the multipart body could not be parsed");
        });
      const files = form.getAll("file").filter((f): f is File => typeof f !== "string");
      if (files.length === 0) throw new InvalidRequestError("the multipart body has no 'file' part");
      const out = [];
      for (const f of files) {
        const target = sandboxPath(files.length === 1 && req.query.path ? req.query.path : f.name);
        await client.write(target, Buffer.from(await f.arrayBuffer()));
        out.push(written(target));
      }
      return out;
    }
    if (!req.query.path) throw new InvalidRequestError("path is required", { field: "path" });
    const target = sandboxPath(req.query.path);
    await client.write(target, raw);
    return [written(target)];
  });
}

/** The decompressed body, cut off at `max` bytes (a gzip bomb is refused, not written). */
function gunzipped(body: Readable, max: number): Readable {
  const gunzip = createGunzip();
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max)
        cb(
          new PayloadTooLargeError(
            `the upload is larger than ${max} bytes (${SETTINGS.maxUploadBytes.env})`,
            { max },
          ),
        );
      else cb(null, chunk);
    },
  });
  const fail = (e: Error) =>
    counter.destroy(
      e instanceof PayloadTooLargeError ? e : new InvalidRequestError("the gzip body is corrupt"),
    );
  body.on("error", fail);
  gunzip.on("error", fail);
  return body.pipe(gunzip).pipe(counter);
}
