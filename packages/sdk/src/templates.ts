import { createReadStream, statSync } from "node:fs";
import { Readable } from "node:stream";
import { BerthError } from "@berth/core";
import type { BuildTemplateBody, TEMPLATE_FORMATS, Template } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/**
 * A named root filesystem sandboxes are made from (`GET /v1/templates`): `sizeBytes` on disk
 * (one copy, shared by every sandbox made from it), `source` where it came from.
 */
export type TemplateInfo = Static<typeof Template>;

/** What an imported archive is: a root filesystem tar, a `docker save` archive, an OCI image layout tar. */
export type TemplateFormat = (typeof TEMPLATE_FORMATS)[number];

/** Options of `Templates.import`. */
export interface ImportOptions {
  format?: TemplateFormat;
  /** Called as the upload goes, with bytes sent and the total (when known). */
  onProgress?: (sentBytes: number, totalBytes?: number) => void;
  signal?: AbortSignal;
}

/** What a build reports while it runs. */
export type BuildProgress = { kind: "status"; message: string } | { kind: "stdout" | "stderr"; data: string };

/** Options of `Templates.build`. */
export interface BuildOptions {
  /** The template the script runs in (default `default`). */
  from?: string;
  /** Shell script, run with `sh -c` as the sandbox user in /workspace. */
  run: string;
  /** Limit on the script (default 1800). */
  timeoutSeconds?: number;
  resources?: BuildTemplateBody["resources"];
  /** Status lines and the script's output as they come. */
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
}

const path = (name: string) => `/v1/templates/${encodeURIComponent(name)}`;

/** Templates: anyone may list them; import, build and remove need an admin key. */
export class Templates {
  constructor(private readonly client: BerthClient) {}

  /** Every template, `default` first. */
  async list(o: CallOptions = {}): Promise<TemplateInfo[]> {
    return (await this.client.json<{ items: TemplateInfo[] }>("GET", "/v1/templates", { signal: o.signal }))
      .items;
  }

  /** One template (NotFoundError when there is none). */
  get(name: string, o: CallOptions = {}): Promise<TemplateInfo> {
    return this.client.json("GET", path(name), { signal: o.signal });
  }

  /**
   * Imports template `name` from an archive: a file path (streamed, never read whole) or bytes.
   * Layers of `docker`/`oci` archives are applied in order, whiteouts honoured.
   */
  async import(name: string, archive: string | Uint8Array, opts: ImportOptions = {}): Promise<TemplateInfo> {
    let body: Uint8Array | ReadableStream<Uint8Array>;
    const headers: Record<string, string> = { "content-type": "application/x-tar" };
    if (typeof archive === "string") {
      const total = statSync(archive).size;
      headers["content-length"] = String(total);
      let sent = 0;
      const file = createReadStream(archive, { highWaterMark: 1 << 20 });
      file.on("data", (chunk) => {
        sent += chunk.length;
        opts.onProgress?.(sent, total);
      });
      body = Readable.toWeb(file) as unknown as ReadableStream<Uint8Array>;
    } else body = archive;
    return this.client.json("PUT", path(name), {
      query: { format: opts.format ?? "rootfs" },
      body,
      headers,
      signal: opts.signal,
    });
  }

  /**
   * Builds template `name` by running `opts.run` in a sandbox of `opts.from`; what the script
   * leaves on disk becomes the template. Progress streams to `onProgress`.
   */
  async build(name: string, opts: BuildOptions): Promise<TemplateInfo> {
    const events = this.client.stream("POST", `${path(name)}/build`, {
      json: {
        from: opts.from ?? "default",
        run: opts.run,
        timeoutSeconds: opts.timeoutSeconds,
        resources: opts.resources,
      },
      signal: opts.signal,
      isLast: (e) => e.event === "template",
    });
    for await (const e of events) {
      const data = JSON.parse(e.data) as { message?: string; data?: string } & TemplateInfo;
      if (e.event === "template") return data;
      if (e.event === "status") opts.onProgress?.({ kind: "status", message: data.message ?? "" });
      else if (e.event === "stdout" || e.event === "stderr")
        opts.onProgress?.({ kind: e.event, data: data.data ?? "" });
    }
    throw new BerthError("internal_error", "the build ended without a result");
  }

  /** Deletes a template (ConflictError while a sandbox is made from it). */
  async remove(name: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", path(name), { signal: o.signal });
  }
}
