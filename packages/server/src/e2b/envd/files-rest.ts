import { posix } from "node:path";
import { Readable, Transform } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import { InvalidRequestError, PayloadTooLargeError, SETTINGS } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { Type as T } from "@sinclair/typebox";
import { limitedBody } from "../../http/upload.js";
import type { App, ServerContext } from "../../routes/context.js";
import { envdCallOf } from "./auth.js";
import { sandboxPath } from "./call.js";
import { metadataFromHeaders, writeMetadata } from "./file-metadata.js";

/** The query of `/files` (a signed file URL adds `signature` and `signature_expiration`). */
export const FilesQuery = T.Object({
  path: T.Optional(T.String({ maxLength: 4096 })),
  username: T.Optional(T.String({ maxLength: 64 })),
  signature: T.Optional(T.String({ maxLength: 512 })),
  signature_expiration: T.Optional(T.String({ maxLength: 32 })),
});

/** What envd answers for each file written (with its metadata, when the upload set some). */
const written = (path: string, metadata?: Record<string, string>) => ({
  name: posix.basename(path),
  type: "file",
  path,
  ...(metadata ? { metadata } : {}),
});

/** Writes one uploaded file and then its metadata; a file whose metadata failed is removed again. */
async function writeFile(
  client: SupervisorClient,
  path: string,
  data: Buffer | Readable,
  metadata: Record<string, string> | undefined,
) {
  await client.write(path, data);
  if (metadata)
    await writeMetadata(client, path, metadata).catch(async (e: unknown) => {
      await client.remove(path, { recursive: false }).catch(() => {});
      throw e;
    });
  return written(path, metadata);
}

/**
 * E2B's REST file transfer: `GET /files` (a file's bytes, gzip on request) and `POST /files`
 * (multipart with one part per file, or one raw octet-stream body, optionally gzip-encoded).
 */
export function filesRoutes(app: App, ctx: ServerContext): void {
  const schema = { hide: true, querystring: FilesQuery };
  app.get("/files", { schema }, async (req, reply) => {
    const { client, home } = envdCallOf(req);
    if (!req.query.path) throw new InvalidRequestError("path is required", { field: "path" });
    const path = sandboxPath(req.query.path, home);
    const { size, stream } = await client.read(path);
    reply.type("application/octet-stream");
    if (/\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))) {
      reply.header("content-encoding", "gzip");
      return reply.send(stream.pipe(createGzip()));
    }
    return reply.header("content-length", size).send(stream);
  });

  app.post("/files", { schema }, async (req) => {
    const { client, home } = envdCallOf(req);
    // Checked before anything is written: a refused upload leaves no file behind.
    const metadata = metadataFromHeaders(req.headers);
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
      // A part without a file name (a plain form field, as `form.append("file", text)` makes) is
      // the content of the file at `path`, as envd takes it.
      const files = form.getAll("file");
      if (files.length === 0) throw new InvalidRequestError("the multipart body has no 'file' part");
      const out = [];
      for (const f of files) {
        const name =
          files.length === 1 && req.query.path ? req.query.path : typeof f === "string" ? "" : f.name;
        if (!name)
          throw new InvalidRequestError("a 'file' part without a file name needs ?path=", { field: "path" });
        const data = typeof f === "string" ? Buffer.from(f) : Buffer.from(await f.arrayBuffer());
        out.push(await writeFile(client, sandboxPath(name, home), data, metadata));
      }
      return out;
    }
    if (!req.query.path) throw new InvalidRequestError("path is required", { field: "path" });
    const target = sandboxPath(req.query.path, home);
    return [await writeFile(client, target, raw, metadata)];
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
