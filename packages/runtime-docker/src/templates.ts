import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, renameSync, rmSync, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import {
  ConflictError,
  InvalidRequestError,
  type Logger,
  NotFoundError,
  NotSupportedError,
  type TemplateFormat,
  type TemplateInfo,
} from "@berth/core";
import { run } from "@berth/linux-host";
import { ensureDefaultImage } from "./default-image.js";
import { drainProgress, type Engine, isNotFound } from "./engine.js";

const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const REPO = "berth-template";

/** The image of template `name`. */
export function templateRef(name: string): string {
  return `${REPO}/${name}:latest`;
}

interface ImageJson {
  Id: string;
  Created: string;
  Size: number;
  Config: { Labels: Record<string, string> | null } | null;
}

/** Templates as images `berth-template/<name>`, labelled with their name, source and whether they want the host's /usr. */
export class DockerTemplates {
  constructor(
    protected readonly engine: Engine,
    protected readonly log: Logger,
  ) {}

  /** Imports the `default` image (a skeleton for the host's /usr) unless it exists. */
  ensureDefault(): Promise<boolean> {
    return ensureDefaultImage(this.engine, templateRef("default"), labels("default", "built in", true));
  }

  /** Facts about a template's image; NotFoundError when there is none. */
  async image(name: string): Promise<{ hostUsr: boolean }> {
    const l = await this.imageLabels(templateRef(name)).catch((err) => {
      if (isNotFound(err)) throw new NotFoundError("template", name);
      throw err;
    });
    return { hostUsr: l["berth.host-usr"] === "1" };
  }

  async imageLabels(ref: string): Promise<Record<string, string>> {
    const i = await this.engine.json<ImageJson>({
      method: "GET",
      path: `/images/${encodeURIComponent(ref)}/json`,
    });
    return i.Config?.Labels ?? {};
  }

  async listTemplates(): Promise<TemplateInfo[]> {
    const filters = encodeURIComponent(JSON.stringify({ reference: [`${REPO}/*`] }));
    const images = await this.engine.json<{ RepoTags: string[] | null }[]>({
      method: "GET",
      path: `/images/json?filters=${filters}`,
    });
    const names = images.flatMap((i) =>
      (i.RepoTags ?? []).map((t) => /^berth-template\/(.+):latest$/.exec(t)?.[1]),
    );
    const out: TemplateInfo[] = [];
    for (const n of names.filter((x): x is string => Boolean(x)).sort()) {
      const t = await this.getTemplate(n);
      if (t) out.push(t);
    }
    return out;
  }

  async getTemplate(name: string): Promise<TemplateInfo | null> {
    if (!TEMPLATE_NAME.test(name)) return null;
    try {
      const i = await this.engine.json<ImageJson>({
        method: "GET",
        path: `/images/${templateRef(name)}/json`,
      });
      return {
        name,
        sizeBytes: i.Size,
        createdAt: new Date(i.Created).toISOString(),
        source: i.Config?.Labels?.["berth.source"] ?? "docker image",
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** `docker import` of a root filesystem tar, or `docker load` of a `docker save` archive (its first image). */
  async importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    await this.checkNew(name);
    if (format === "oci")
      throw new NotSupportedError(
        "the docker driver imports rootfs tars and `docker save` archives, not OCI layouts",
      );
    if (format === "rootfs") {
      const q = new URLSearchParams({ fromSrc: "-", repo: `${REPO}/${name}`, tag: "latest" });
      for (const c of labels(name, "rootfs tar", false)) q.append("changes", c);
      const res = await this.engine.stream({
        method: "POST",
        path: `/images/create?${q}`,
        body: createReadStream(file),
      });
      await drainProgress(res);
    } else {
      // A load retags silently: an archive must not take the name of an image that exists.
      for (const tag of await archiveTags(file))
        if (await this.exists(tag))
          throw new ConflictError(`the archive's image ${tag} names an existing image`);
      const loaded = await this.load(file);
      signal?.throwIfAborted();
      // Labels can only be added by a commit: of a container made (never started) from the loaded image.
      const c = await this.engine.json<{ Id: string }>({
        method: "POST",
        path: "/containers/create",
        json: { Image: loaded, Entrypoint: ["/"], Labels: {} },
      });
      try {
        await this.commit(c.Id, name, `docker save archive ${loaded}`, false);
      } finally {
        await this.engine.json({ method: "DELETE", path: `/containers/${c.Id}?force=true` }).catch(() => {});
        await this.removeImage(loaded);
      }
    }
    const t = await this.getTemplate(name);
    if (!t) throw new NotFoundError("template", name);
    this.log.info({ template: name, format }, "template imported");
    return t;
  }

  /** Commits a container as template `name`. */
  async commit(container: string, name: string, source: string, hostUsr: boolean): Promise<TemplateInfo> {
    await this.checkNew(name);
    const l = Object.fromEntries(
      labels(name, source, hostUsr).map((c) => c.slice(6).split("=") as [string, string]),
    );
    await this.engine.json({
      method: "POST",
      path: `/commit?container=${container}&repo=${encodeURIComponent(`${REPO}/${name}`)}&tag=latest&pause=true`,
      json: { Labels: Object.fromEntries(Object.entries(l).map(([k, v]) => [k, JSON.parse(v)])) },
    });
    const t = await this.getTemplate(name);
    if (!t) throw new NotFoundError("template", name);
    return t;
  }

  /**
   * Commits a container (paused while committed, so consistent) to a temporary image in `repo`
   * with `imageLabels`, writes that image as a `docker save` archive to `dest` (whole or not at
   * all) and removes the image; `load` reads it back. Resolves with the archive's size.
   */
  async save(
    container: string,
    repo: string,
    imageLabels: Record<string, string>,
    dest: string,
  ): Promise<number> {
    const tag = randomBytes(6).toString("hex");
    const ref = `${repo}-${tag}:latest`;
    await this.engine.json({
      method: "POST",
      path: `/commit?container=${container}&repo=${encodeURIComponent(`${repo}-${tag}`)}&tag=latest&pause=true`,
      json: { Labels: imageLabels },
      timeoutMs: 30 * 60_000,
    });
    const tmp = `${dest}.tmp`;
    try {
      const res = await this.engine.stream({ method: "GET", path: `/images/${encodeURIComponent(ref)}/get` });
      await pipeline(res, createWriteStream(tmp, { mode: 0o600 }));
      renameSync(tmp, dest);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    } finally {
      await this.removeImage(ref);
    }
    return statSync(dest).size;
  }

  /** `docker load` of an archive; the reference of the image it held. */
  async load(file: string): Promise<string> {
    const res = await this.engine.stream({
      method: "POST",
      path: "/images/load?quiet=1",
      body: createReadStream(file),
    });
    const lines = await drainProgress(res);
    for (const line of lines) {
      const m = /Loaded image(?: ID)?: (\S+)/.exec(line);
      if (m?.[1]) return m[1];
    }
    throw new InvalidRequestError("the archive holds no image");
  }

  private async exists(ref: string): Promise<boolean> {
    try {
      await this.engine.json({ method: "GET", path: `/images/${encodeURIComponent(ref)}/json` });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes template `name` unless a sandbox (hibernated too) is made from it. */
  async remove(name: string, users: string[]): Promise<void> {
    if (name === "default")
      throw new InvalidRequestError("the default template cannot be deleted", { field: "name" });
    if (!(await this.getTemplate(name))) throw new NotFoundError("template", name);
    if (users.length > 0)
      throw new ConflictError(
        `template '${name}' is used by ${users.join(", ")}; delete those sandboxes first`,
        {
          sandboxes: users,
        },
      );
    await this.removeImage(templateRef(name));
  }

  /** Untags an image and removes what no other image or container uses; a busy or missing one is left. */
  async removeImage(ref: string): Promise<void> {
    await this.engine.json({ method: "DELETE", path: `/images/${encodeURIComponent(ref)}` }).catch((err) => {
      this.log.debug({ image: ref, err: String(err) }, "image not removed");
    });
  }

  private async checkNew(name: string): Promise<void> {
    if (!TEMPLATE_NAME.test(name)) throw new InvalidRequestError("invalid template name", { field: "name" });
    if (await this.getTemplate(name)) throw new ConflictError(`template '${name}' already exists`);
  }
}

/** Dockerfile `LABEL` changes naming a template. */
function labels(name: string, source: string, hostUsr: boolean): string[] {
  return [
    `LABEL berth.template=${JSON.stringify(name)}`,
    `LABEL berth.source=${JSON.stringify(source)}`,
    `LABEL berth.host-usr=${JSON.stringify(hostUsr ? "1" : "0")}`,
  ];
}

/** The tags a `docker save` archive gives its images (its manifest.json; tar detects compression). */
async function archiveTags(file: string): Promise<string[]> {
  const manifest = await run("tar", ["-xOf", file, "manifest.json"]).then(
    (r) => r.stdout,
    () => {
      throw new InvalidRequestError("not a docker save archive (no manifest.json)");
    },
  );
  try {
    const entries = JSON.parse(manifest) as { RepoTags?: string[] | null }[];
    return entries.flatMap((e) => e.RepoTags ?? []).map((t) => (t.includes(":") ? t : `${t}:latest`));
  } catch {
    throw new InvalidRequestError("not a docker save archive (manifest.json is not JSON)");
  }
}
