import { NotFoundError, NotSupportedError, type TemplateCatalog, type TemplateInfo } from "@berth/core";

const TEMPLATES_ARE_IMAGES =
  "templates on the kubernetes driver are container images named in BERTH_K8S_IMAGES: build and push an image, then add it there";

/**
 * Templates on Kubernetes are container images named in the config (BERTH_K8S_IMAGES): listed,
 * never built here (import, from-sandbox and delete answer 501).
 */
export class ImageTemplates implements TemplateCatalog {
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly images: Record<string, string>) {}

  /** The image of a template; NotFoundError when the config names none. */
  image(template: string): string {
    const image = Object.hasOwn(this.images, template) ? this.images[template] : undefined;
    if (!image) throw new NotFoundError("template", template);
    return image;
  }

  async listTemplates(): Promise<TemplateInfo[]> {
    return Object.entries(this.images).map(([name, image]) => ({
      name,
      sizeBytes: 0,
      createdAt: this.startedAt,
      source: `image ${image}`,
    }));
  }

  async getTemplate(name: string): Promise<TemplateInfo | null> {
    return (await this.listTemplates()).find((t) => t.name === name) ?? null;
  }

  async importTemplate(): Promise<TemplateInfo> {
    throw new NotSupportedError(TEMPLATES_ARE_IMAGES);
  }

  async templateFromSandbox(): Promise<TemplateInfo> {
    throw new NotSupportedError(TEMPLATES_ARE_IMAGES);
  }

  async deleteTemplate(): Promise<void> {
    throw new NotSupportedError(TEMPLATES_ARE_IMAGES);
  }
}
