import type { KeyedLock, TemplateCatalog, TemplateFormat, TemplateInfo } from "@berth/core";
import { type DockerInstance, LABEL } from "./instance.js";
import type { DockerTemplates } from "./templates.js";

/** The Docker driver's templates as the `Runtime` offers them: images, committed from containers. */
export class DockerTemplateCatalog implements TemplateCatalog {
  constructor(
    private readonly images: DockerTemplates,
    private readonly instance: DockerInstance,
    private readonly lock: KeyedLock,
  ) {}

  listTemplates(): Promise<TemplateInfo[]> {
    return this.images.list();
  }

  getTemplate(name: string): Promise<TemplateInfo | null> {
    return this.images.get(name);
  }

  importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    return this.images.importArchive(name, file, format, signal);
  }

  /** Commits the sandbox's container as template `name` (paused while committed). */
  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      const base = c.Config.Labels?.[LABEL.template] ?? "default";
      return this.images.commit(c.Id, name, `built from ${base}`, c.Config.Labels?.[LABEL.hostUsr] === "1");
    });
  }

  /** Deletes a template unless a container of any Berth instance on this engine is made from it. */
  async deleteTemplate(name: string): Promise<void> {
    const users = (await this.instance.containers(false)).filter((c) => c.Labels?.[LABEL.template] === name);
    await this.images.remove(
      name,
      users.map((c) => c.Labels?.[LABEL.sandbox] ?? c.Id),
    );
  }
}
