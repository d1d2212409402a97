import type { Readable } from "node:stream";
import { InvalidRequestError, PayloadTooLargeError } from "@berth/core";
import {
  MAX_STDIN_WRITE_BYTES,
  ProcessParams,
  StdinJsonBody,
  StdinQuery,
  StdinResult,
} from "@berth/core/contract";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { App, ServerContext } from "./context.js";

const tooLarge = () =>
  new PayloadTooLargeError(
    `a stdin write is at most ${MAX_STDIN_WRITE_BYTES} bytes: send more in several writes`,
    {
      max: MAX_STDIN_WRITE_BYTES,
    },
  );

/** The whole request body, at most MAX_STDIN_WRITE_BYTES (JSON's text may be twice that: base64). */
async function readBody(
  req: { headers: Record<string, unknown>; body: unknown },
  max: number,
): Promise<Buffer> {
  if (Number(req.headers["content-length"] ?? 0) > max) throw tooLarge();
  const body = req.body as Readable | undefined;
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let seen = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > max) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The bytes a JSON body `{data, encoding}` stands for; 400 naming the field when malformed. */
function fromJson(raw: Buffer): Buffer {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString("utf8") || "null");
  } catch {
    throw new InvalidRequestError("the body is not valid JSON: send {data, encoding?} or raw bytes", {
      field: "body",
    });
  }
  const err = Value.Errors(StdinJsonBody as TSchema, v).First();
  if (err) {
    const field = err.path.replace(/^\//, "").replace(/\//g, ".") || "body";
    throw new InvalidRequestError(`${field}: ${err.message} (send {data: string, encoding?: utf8|base64})`, {
      field,
    });
  }
  const b = v as StdinJsonBody;
  if (b.encoding === "base64") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b.data) || b.data.length % 4 === 1)
      throw new InvalidRequestError("data is not valid base64", { field: "data" });
    return Buffer.from(b.data, "base64");
  }
  return Buffer.from(b.data, "utf8");
}

/**
 * `POST .../processes/:pid/stdin`: writes to the stdin of a background process started with
 * `stdin: true`, and with `?close=true` closes it afterwards. Registered in the raw-body scope:
 * any content type but JSON is the bytes themselves. The body is read whole before the process
 * is touched, so a failed or oversized upload writes nothing.
 */
export function processStdinRoutes(app: App, ctx: ServerContext): void {
  app.post(
    "/v1/sandboxes/:id/processes/:pid/stdin",
    {
      schema: {
        tags: ["processes"],
        params: ProcessParams,
        querystring: StdinQuery,
        response: { 200: StdinResult },
        description:
          "Writes the body to the process's stdin (at most 1 MiB; raw bytes, or JSON {data, encoding: utf8|base64}); with close=true closes stdin after it (an empty body just closes). Waits until the process has taken every byte into its stdin pipe. 409 conflict when the process was not started with stdin: true, has exited, or its stdin is closed.",
      },
    },
    async (req, reply) => {
      const pid = Number(req.params.pid);
      const json = String(req.headers["content-type"] ?? "").startsWith("application/json");
      const raw = await readBody(req, json ? 3 * MAX_STDIN_WRITE_BYTES : MAX_STDIN_WRITE_BYTES);
      const data = json ? fromJson(raw) : raw;
      if (data.length > MAX_STDIN_WRITE_BYTES) throw tooLarge();
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const r = await client.writeStdin(pid, data, { close: req.query.close === "true" });
      ctx.sandboxes.touch(req.params.id);
      return { pid, written: r.written, closed: r.closed };
    },
  );
}
