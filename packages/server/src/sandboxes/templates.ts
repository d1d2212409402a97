import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  ConflictError,
  InvalidRequestError,
  LIVE_SANDBOX_STATES,
  type Logger,
  type Resources,
  type Runtime,
  type Store,
  type TemplateFormat,
  type TemplateInfo,
  TimeoutError,
} from "@berth/core";
import { runExec } from "./exec.js";
import type { SandboxService } from "./service.js";

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Label on the sandbox a template build runs in. */
export const BUILD_LABEL = "berth.template-build";

/** What a build reports while it runs. */
export type BuildProgress =
  | { kind: "status"; message: string; sandboxId?: string }
  | { kind: "stdout" | "stderr"; data: string };

/** `POST /v1/templates/build`. */
export interface BuildRequest {
  name: string;
  from: string;
  run: string;
  timeoutSeconds: number;
  resources?: Partial<Resources>;
}

/**
 * Templates are the server's, not a tenant's (one copy on disk, shared by every sandbox made
 * from it), so everything but listing needs an admin key (checked by the routes). Imports are
 * streamed to a temp file in `<dataDir>/template-uploads/` and unpacked by the runtime; builds
 * run a script in a sandbox of the caller's tenant and keep what it wrote.
 */
export class TemplateService {
  private readonly uploads: string;

  constructor(
    private readonly d: {
      dataDir: string;
      store: Store;
      runtime: Runtime;
      sandboxes: SandboxService;
      log: Logger;
    },
  ) {
    this.uploads = join(d.dataDir, "template-uploads");
    mkdirSync(this.uploads, { recursive: true, mode: 0o700 });
  }

  /** Removes uploads a stopped server left. */
  sweep(): void {
    for (const name of readdirSync(this.uploads)) rmSync(join(this.uploads, name), { force: true });
  }

  /** Every template, `default` first. */
  list(): Promise<TemplateInfo[]> {
    return this.d.runtime.listTemplates();
  }

  /** One template, or null. */
  get(name: string): Promise<TemplateInfo | null> {
    return NAME.test(name) ? this.d.runtime.getTemplate(name) : Promise.resolve(null);
  }

  /** What `build` refuses before it starts anything: a bad or taken name, an unknown base. */
  async checkBuild(req: Pick<BuildRequest, "name" | "from">): Promise<void> {
    await this.checkNewName(req.name);
    if (!(await this.get(req.from)))
      throw new InvalidRequestError(`unknown template '${req.from}'`, { field: "from" });
  }

  /** Imports `body` (a tar, `docker save` archive or OCI layout tar) as template `name`. */
  async import(
    name: string,
    format: TemplateFormat,
    body: Readable,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    await this.checkNewName(name);
    const file = join(this.uploads, `${randomBytes(8).toString("hex")}.upload`);
    try {
      await pipeline(body, createWriteStream(file, { mode: 0o600, flags: "wx" }));
      return await this.d.runtime.importTemplate(name, file, format, signal);
    } finally {
      rmSync(file, { force: true });
    }
  }

  /**
   * Builds template `name`: a sandbox of `from` with open egress runs `run` (`sh -c`, as the
   * sandbox user) and what it leaves on disk becomes the new template. The sandbox is deleted
   * afterwards, whatever happened. A script that fails is a 400 with its exit code.
   */
  async build(
    tenantId: string,
    req: BuildRequest,
    progress: (p: BuildProgress) => void = () => {},
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    await this.checkBuild(req);
    const egress = this.d.runtime.egressModes.includes("open") ? "open" : "none";
    const sandbox = await this.d.sandboxes.create(tenantId, {
      template: req.from,
      network: { egress },
      resources: req.resources,
      // The lifetime backs up the exec timeout: a stuck build is reaped even if this server dies.
      timeoutSeconds: req.timeoutSeconds + 600,
      labels: { [BUILD_LABEL]: req.name },
    });
    progress({
      kind: "status",
      message: `sandbox ${sandbox.id} of '${req.from}' started`,
      sandboxId: sandbox.id,
    });
    try {
      const { client } = await this.d.sandboxes.running(tenantId, sandbox.id);
      const out = await runExec(
        client,
        {
          cmd: ["sh", "-c", req.run],
          env: this.d.sandboxes.processEnv(sandbox),
          cwd: "/workspace",
          timeoutMs: req.timeoutSeconds * 1000,
        },
        {
          output: (kind, bytes) => {
            progress({ kind, data: bytes.toString("utf8") });
            return true;
          },
        },
        signal,
      );
      if (out.timedOut)
        throw new TimeoutError(`the build script ran past timeoutSeconds (${req.timeoutSeconds})`);
      if (out.exitCode !== 0)
        throw new InvalidRequestError(`the build script failed with exit code ${out.exitCode}`, {
          field: "run",
          exitCode: out.exitCode,
        });
      progress({
        kind: "status",
        message: `script done in ${Math.round(out.durationMs)} ms; saving the template`,
      });
      const t = await this.d.runtime.templateFromSandbox(sandbox.id, req.name);
      this.d.log.info({ template: req.name, from: req.from, sandboxId: sandbox.id }, "template built");
      return t;
    } finally {
      await this.d.sandboxes.remove(tenantId, sandbox.id).catch((err) => {
        this.d.log.warn({ sandboxId: sandbox.id, err: String(err) }, "could not delete a build sandbox");
      });
    }
  }

  /** Deletes a template: 409 while a sandbox (of any tenant, hibernated ones too) is made from it. */
  async remove(name: string): Promise<void> {
    if (!NAME.test(name)) throw new InvalidRequestError("that is not a template name", { field: "name" });
    if (name === "default")
      throw new InvalidRequestError("the default template cannot be deleted", { field: "name" });
    const users: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.d.store.listSandboxes({ states: LIVE_SANDBOX_STATES, limit: 500, cursor });
      for (const s of page.items) if (s.template === name) users.push(s.id);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if (users.length > 0)
      throw new ConflictError(
        `template '${name}' is used by ${users.join(", ")}; delete those sandboxes first`,
        {
          sandboxes: users,
        },
      );
    await this.d.runtime.deleteTemplate(name);
  }

  /** Fails fast, before a large upload or a build, on a name that cannot be used. */
  async checkNewName(name: string): Promise<void> {
    if (!NAME.test(name))
      throw new InvalidRequestError(
        "a template name is 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        { field: "name" },
      );
    if (name === "default")
      throw new InvalidRequestError("'default' is built in and cannot be replaced", { field: "name" });
    if (await this.d.runtime.getTemplate(name))
      throw new ConflictError(`template '${name}' already exists; delete it first`);
  }
}
