import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  ConflictError,
  InvalidRequestError,
  type Logger,
  NotFoundError,
  SandboxError,
  type TemplateFormat,
  type TemplateInfo,
} from "@berth/core";
import { run } from "@berth/linux-host";
import { dockerSaveLayers, ImageFormatError, ociLayoutLayers, openArchive } from "./image.js";
import { applyLayer, UnsafeArchiveError } from "./layer.js";
import { prepareRootfs } from "./rootfs.js";
import { TarFormatError } from "./tar-reader.js";

/** Template names: also the directory name, so no dots first and nothing that is not a path part. */
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What `meta.json` beside a template's `rootfs/` says. */
export interface TemplateMeta extends TemplateInfo {
  /** Whether sandboxes of it get the host's /usr bound read-only (default and what is built on it). */
  hostUsr: boolean;
}

/** Largest unpacked image, in bytes: what a decompression bomb can write before it is stopped. */
const MAX_UNPACKED = 64 * 1024 ** 3;

/** Where sandbox writes go that a built template leaves out (scratch space and mount points). */
const NOT_IN_BUILDS = ["tmp/", "var/tmp/", "run/", "proc/", "sys/", "dev/", ".berth/"];

/**
 * Templates on disk: `<dir>/<name>/rootfs` (the read-only lower layer of every sandbox made from
 * it, one copy shared by all) and `<dir>/<name>/meta.json`. Every template is a complete root
 * filesystem; only `default` and templates built on it rely on the host's /usr. New ones are
 * made in `<dir>/.tmp-*` and renamed into place, so a template is there whole or not at all.
 */
export class TemplateStore {
  /** Creates in flight per template: a template cannot be deleted under a sandbox being made. */
  private readonly holds = new Map<string, number>();
  private defaultMeta: TemplateMeta | null = null;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Removes what a server stopped mid-import or mid-delete left behind. */
  sweep(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir))
      if (name.startsWith(".tmp-") || name.startsWith(".del-"))
        rmSync(join(this.dir, name), { recursive: true, force: true });
  }

  /** The lower layer of `name`; NotFoundError when there is no such template. */
  rootfs(name: string): string {
    const p = join(this.dir, name, "rootfs");
    if (!TEMPLATE_NAME.test(name) || !existsSync(p)) throw new NotFoundError("template", name);
    return p;
  }

  /** A template's facts, or null. */
  async get(name: string): Promise<TemplateMeta | null> {
    if (!TEMPLATE_NAME.test(name) || !existsSync(join(this.dir, name, "rootfs"))) return null;
    if (name === "default") return this.defaultInfo();
    try {
      return JSON.parse(readFileSync(join(this.dir, name, "meta.json"), "utf8")) as TemplateMeta;
    } catch {
      return null;
    }
  }

  /** Every template, `default` first, then by name. */
  async list(): Promise<TemplateMeta[]> {
    const names = readdirSync(this.dir).filter((n) => TEMPLATE_NAME.test(n) && n !== "default");
    const out = [await this.get("default")];
    for (const n of names.sort()) out.push(await this.get(n));
    return out.filter((t): t is TemplateMeta => t !== null);
  }

  /** Whether sandboxes of `name` get the host's /usr. */
  usesHostUsr(name: string): boolean {
    if (name === "default") return true;
    try {
      return (JSON.parse(readFileSync(join(this.dir, name, "meta.json"), "utf8")) as TemplateMeta).hostUsr;
    } catch {
      return false;
    }
  }

  /** Marks a create from `name` in flight (NotFoundError if it does not exist); call the result when done. */
  hold(name: string): () => void {
    this.rootfs(name);
    this.holds.set(name, (this.holds.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(name) ?? 1) - 1;
      if (n > 0) this.holds.set(name, n);
      else this.holds.delete(name);
    };
  }

  /**
   * Imports a template from an archive file (or, for `oci`, an image layout directory): a root
   * filesystem tar, a `docker save` archive or an OCI image layout, layers applied in order with
   * their whiteouts. A hostile or malformed archive is an InvalidRequestError and leaves nothing.
   */
  async importArchive(
    name: string,
    file: string,
    format: TemplateFormat,
    o: { signal?: AbortSignal } = {},
  ): Promise<TemplateMeta> {
    this.checkNewName(name);
    return this.make(name, async (tmp) => {
      const rootfs = join(tmp, "rootfs");
      const apply = (from: string, whiteouts: "oci" | "none", into = rootfs) =>
        applyLayer(into, openArchive(from), { whiteouts, maxBytes: MAX_UNPACKED, signal: o.signal });
      if (format === "rootfs") {
        await apply(file, "none");
        return { source: "rootfs tar", hostUsr: false };
      }
      let image = file;
      if (!statSync(file).isDirectory()) {
        // The outer archive is as untrusted as its layers: it is unpacked by the same code.
        image = join(tmp, "image");
        mkdirSync(image, { mode: 0o700 });
        await apply(file, "none", image);
      }
      const { layers, ref } = format === "docker" ? dockerSaveLayers(image) : ociLayoutLayers(image);
      for (const layer of layers) await apply(layer, "oci");
      rmSync(join(tmp, "image"), { recursive: true, force: true });
      const kind = format === "docker" ? "docker save archive" : "OCI image";
      return { source: ref ? `${kind} ${ref}` : kind, hostUsr: false };
    });
  }

  /**
   * A new template from `base` with a sandbox's writable layer (an overlayfs upper dir, as a tar
   * stream) on top: the base is copied as hard links (its files are shared, not duplicated; a
   * template is never written to, and the layer only ever replaces files whole), then the layer
   * is applied, whiteouts and opaque dirs included. Scratch dirs (/tmp, /run, ...) are left out.
   */
  async fromLayer(
    name: string,
    base: string,
    layer: AsyncIterable<Buffer>,
    source: string,
  ): Promise<TemplateMeta> {
    this.checkNewName(name);
    const hostUsr = this.usesHostUsr(base);
    const from = this.rootfs(base);
    return this.make(name, async (tmp) => {
      const rootfs = join(tmp, "rootfs");
      rmSync(rootfs, { recursive: true, force: true });
      await run("cp", ["-a", "-l", "--", from, rootfs], { log: this.log, timeoutMs: 30 * 60_000 });
      const skip = hostUsr ? [...NOT_IN_BUILDS, "usr/"] : NOT_IN_BUILDS;
      await applyLayer(rootfs, layer, {
        whiteouts: "overlay",
        exclude: (rel) => skip.some((p) => `${rel}/`.startsWith(p) && `${rel}/` !== p),
        maxBytes: MAX_UNPACKED,
      });
      return { source, hostUsr };
    });
  }

  /**
   * Deletes a template. `users` are the sandboxes that still have it as their lower layer; with
   * any of them, or a create from it in flight, it is a ConflictError. The directory is renamed
   * away first (synchronously after the checks), so no new sandbox can start from it meanwhile.
   */
  async remove(name: string, users: string[]): Promise<void> {
    if (name === "default")
      throw new InvalidRequestError("the default template cannot be deleted", { field: "name" });
    this.rootfs(name);
    const busy = [...users];
    if (busy.length > 0 || (this.holds.get(name) ?? 0) > 0)
      throw new ConflictError(
        `template '${name}' is used by ${busy.length > 0 ? busy.join(", ") : "a sandbox being created"}; delete those sandboxes first`,
        {
          sandboxes: busy,
        },
      );
    const gone = join(this.dir, `.del-${name}-${randomBytes(4).toString("hex")}`);
    renameSync(join(this.dir, name), gone);
    rmSync(gone, { recursive: true, force: true });
    this.log.info({ template: name }, "template deleted");
  }

  private checkNewName(name: string): void {
    if (!TEMPLATE_NAME.test(name))
      throw new InvalidRequestError(
        "a template name is 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        { field: "name" },
      );
    if (name === "default")
      throw new InvalidRequestError("'default' is built in and cannot be replaced", { field: "name" });
    if (existsSync(join(this.dir, name)))
      throw new ConflictError(`template '${name}' already exists; delete it first`);
  }

  /** Makes `<dir>/.tmp-*`, lets `fill` write `rootfs/` there, prepares it, then renames it into place. */
  private async make(
    name: string,
    fill: (tmp: string) => Promise<{ source: string; hostUsr: boolean }>,
  ): Promise<TemplateMeta> {
    const tmp = join(this.dir, `.tmp-${name}-${randomBytes(4).toString("hex")}`);
    mkdirSync(join(tmp, "rootfs"), { recursive: true, mode: 0o700 });
    try {
      const started = Date.now();
      const { source, hostUsr } = await fill(tmp).catch((err: unknown) => {
        throw clientError(err);
      });
      prepareRootfs(join(tmp, "rootfs"));
      const meta: TemplateMeta = {
        name,
        sizeBytes: await diskBytes(join(tmp, "rootfs"), this.log),
        createdAt: new Date().toISOString(),
        source,
        hostUsr,
      };
      writeFileSync(join(tmp, "meta.json"), JSON.stringify(meta), { mode: 0o600 });
      try {
        renameSync(tmp, join(this.dir, name));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST")
          throw new ConflictError(`template '${name}' already exists`);
        throw err;
      }
      this.log.info(
        { template: name, source, sizeBytes: meta.sizeBytes, ms: Date.now() - started },
        "template made",
      );
      return meta;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private async defaultInfo(): Promise<TemplateMeta> {
    if (this.defaultMeta) return this.defaultMeta;
    const rootfs = join(this.dir, "default", "rootfs");
    this.defaultMeta = {
      name: "default",
      sizeBytes: await diskBytes(rootfs, this.log),
      createdAt: statSync(join(rootfs, ".berth-template")).mtime.toISOString(),
      source: "built in: the host's /usr, read-only, with a minimal /etc",
      hostUsr: true,
    };
    return this.defaultMeta;
  }
}

/** Archive problems are the client's (400, naming only member paths); anything else stays as it is. */
function clientError(err: unknown): unknown {
  if (err instanceof UnsafeArchiveError || err instanceof TarFormatError || err instanceof ImageFormatError)
    return new InvalidRequestError(`the archive was refused: ${err.message}`, { field: "body" });
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === "ENOSPC")
    return new SandboxError("the server's disk is full");
  return err;
}

/** Bytes a directory tree takes on disk (hard links counted once), as du(1) counts them. */
async function diskBytes(dir: string, log: Logger): Promise<number> {
  const { stdout } = await run("du", ["-s", "-x", "-B1", "--", dir], { log, timeoutMs: 10 * 60_000 });
  return Number.parseInt(stdout.split("\t")[0] ?? "0", 10) || 0;
}
