import type { Duplex } from "node:stream";
import { InvalidRequestError, NotSupportedError } from "./errors.js";
import type { KeyedLock } from "./keyed-lock.js";
import type { Logger } from "./logger.js";
import type {
  EgressControl,
  Runtime,
  RuntimeInfo,
  RuntimeStatus,
  SandboxAddressing,
  SandboxSpec,
  SandboxStats,
  SandboxVolumes,
  TemplateCatalog,
  TemplateFormat,
  TemplateInfo,
} from "./runtime.js";
import type { EgressMode, NetworkPolicy } from "./types.js";

/** Sandbox ids every driver takes: hostname- and DNS-label-safe, short enough for a unix socket path. */
export const SANDBOX_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * A base for drivers made of capability objects: the driver class keeps the lifecycle and
 * suspension and hands templates, volumes, egress and addressing to one object each; the
 * `Runtime` methods of those capabilities are forwarded here once, not in every driver.
 */
export abstract class CapabilityRuntime implements Runtime {
  abstract readonly name: string;
  abstract readonly addressing: SandboxAddressing;
  /** The driver's template catalog. */
  protected abstract readonly catalog: TemplateCatalog;
  /** The driver's volumes. */
  protected abstract readonly sandboxVolumes: SandboxVolumes;
  /** The driver's egress enforcement. */
  protected abstract readonly egress: EgressControl;

  /** Drivers that copy a sandbox's disk for `fromSandbox` say so. */
  readonly forksSandboxes: boolean = false;

  abstract start(): Promise<void>;
  abstract close(): Promise<void>;
  abstract create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo>;
  abstract connect(id: string): Promise<Duplex>;
  abstract inspect(id: string): Promise<RuntimeStatus>;
  abstract stats(id: string): Promise<SandboxStats>;
  abstract destroy(id: string): Promise<void>;
  abstract list(): Promise<string[]>;
  abstract pause(id: string): Promise<void>;
  abstract resume(id: string): Promise<void>;
  abstract hibernate(id: string): Promise<void>;
  abstract wake(id: string): Promise<RuntimeInfo>;
  abstract snapshot(id: string, dest: string): Promise<number>;

  /** Drivers without root sandboxes keep this answer; the local Linux driver probes its host. */
  async rootUnavailable(): Promise<string | null> {
    return `the ${this.name} runtime has no root sandboxes (the local Linux runtime has)`;
  }

  /**
   * `create` for drivers whose creation is one `build` step: a bad id is refused, one id is
   * built at a time (`lock`), and a failed build is undone by `teardown` (best effort) before
   * the error goes to the caller. These drivers have no root sandboxes: `root` is refused.
   */
  protected createUnderLock(
    spec: SandboxSpec,
    o: { lock: KeyedLock; log: Logger; build: () => Promise<RuntimeInfo>; teardown: () => Promise<void> },
  ): Promise<RuntimeInfo> {
    if (!SANDBOX_ID.test(spec.id))
      return Promise.reject(new InvalidRequestError("invalid sandbox id", { field: "id" }));
    if (spec.fromSandbox && !this.forksSandboxes)
      return Promise.reject(new NotSupportedError("this runtime cannot copy a sandbox's disk"));
    if (spec.root)
      return Promise.reject(
        new NotSupportedError(`the ${this.name} runtime has no root sandboxes (the local Linux runtime has)`),
      );
    return o.lock.run(spec.id, async () => {
      try {
        return await o.build();
      } catch (err) {
        o.log.warn({ id: spec.id, err: String(err) }, "create failed");
        await o.teardown().catch(() => {});
        throw err;
      }
    });
  }

  get egressModes(): readonly EgressMode[] {
    return this.egress.egressModes;
  }

  get egressDeny(): boolean {
    return this.egress.egressDeny === true;
  }

  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    return this.egress.setNetworkPolicy(id, policy);
  }

  createVolume(id: string, sizeMiB: number): Promise<void> {
    return this.sandboxVolumes.createVolume(id, sizeMiB);
  }

  deleteVolume(id: string): Promise<void> {
    return this.sandboxVolumes.deleteVolume(id);
  }

  volumeUsage(id: string): Promise<number> {
    return this.sandboxVolumes.volumeUsage(id);
  }

  listTemplates(): Promise<TemplateInfo[]> {
    return this.catalog.listTemplates();
  }

  getTemplate(name: string): Promise<TemplateInfo | null> {
    return this.catalog.getTemplate(name);
  }

  importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    return this.catalog.importTemplate(name, file, format, signal);
  }

  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.catalog.templateFromSandbox(id, name);
  }

  deleteTemplate(name: string): Promise<void> {
    return this.catalog.deleteTemplate(name);
  }
}
