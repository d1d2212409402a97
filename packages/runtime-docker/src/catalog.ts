import type { KeyedLock, Logger, TemplateCatalog, TemplateInfo } from "@berth/core";
import type { Engine } from "./engine.js";
import { type DockerInstance, LABEL } from "./instance.js";
import { DockerTemplates } from "./templates.js";

/**
 * The Docker driver's templates as the `Runtime` offers them: the images of DockerTemplates,
 * plus templates committed from a sandbox's container and deletes checked against containers.
 */
export class DockerTemplateCatalog extends DockerTemplates implements TemplateCatalog {
  constructor(
    engine: Engine,
    log: Logger,
    private readonly instance: DockerInstance,
    private readonly lock: KeyedLock,
  ) {
    super(engine, log);
  }

  /** Commits the sandbox's container as template `name` (paused while committed). */
  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      const base = c.Config.Labels?.[LABEL.template] ?? "default";
      return this.commit(c.Id, name, `built from ${base}`, c.Config.Labels?.[LABEL.hostUsr] === "1");
    });
  }

  /** Deletes a template unless a container of any Berth instance on this engine is made from it. */
  async deleteTemplate(name: string): Promise<void> {
    const users = (await this.instance.containers(false)).filter((c) => c.Labels?.[LABEL.template] === name);
    await this.remove(
      name,
      users.map((c) => c.Labels?.[LABEL.sandbox] ?? c.Id),
    );
  }
}
