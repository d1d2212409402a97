import { join } from "node:path";
import type { KeyedLock, TemplateCatalog, TemplateFormat, TemplateInfo } from "@berth/core";
import type { SandboxRecords } from "./records.js";
import type { TemplateMeta, TemplateStore } from "./templates/store.js";
import { upperLayerTar } from "./templates/upper-layer.js";

/** How the catalog reads a sandbox's writable layer (see LinuxRuntime's `stillDisk`). */
export type StillDiskReader = <T>(id: string, read: (disk: string) => Promise<T>) => Promise<T>;

/**
 * The local driver's templates: root filesystems in a TemplateStore on this host, imported from
 * archives or made of a sandbox's writable layer over its own template.
 */
export class LinuxTemplates implements TemplateCatalog {
  constructor(
    private readonly store: TemplateStore,
    private readonly o: { records: SandboxRecords; lock: KeyedLock; stillDisk: StillDiskReader },
  ) {}

  async listTemplates(): Promise<TemplateInfo[]> {
    return (await this.store.list()).map(publicTemplate);
  }

  async getTemplate(name: string): Promise<TemplateInfo | null> {
    const t = await this.store.get(name);
    return t && publicTemplate(t);
  }

  async importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    return publicTemplate(await this.store.importArchive(name, file, format, { signal }));
  }

  /**
   * Makes template `name` of a sandbox: its own template with its writable layer on top, read
   * while the sandbox is frozen (or, hibernated, from its disk mounted for the copy).
   */
  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.o.lock.run(id, () =>
      this.o.stillDisk(id, async (disk) => {
        const base = this.o.records.template(id);
        const layer = upperLayerTar(join(disk, "upper"));
        return publicTemplate(await this.store.fromLayer(name, base, layer, `built from ${base}`));
      }),
    );
  }

  /** Deletes a template unless a sandbox on this host (hibernated ones too) is made from it. */
  async deleteTemplate(name: string): Promise<void> {
    // Synchronous from the scan to the rename, so no create can start from it in between.
    const users = this.o.records.ids().filter((id) => this.o.records.template(id) === name);
    await this.store.remove(name, users);
  }
}

/** What clients see of a template (not how the driver mounts it). */
function publicTemplate(t: TemplateMeta): TemplateInfo {
  return { name: t.name, sizeBytes: t.sizeBytes, createdAt: t.createdAt, source: t.source };
}
