import type { Resources, SandboxSpec } from "@berth/core";
import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import {
  claim,
  DEFAULT_CLAUDE_PATH,
  dataClaimName,
  type GatewayTarget,
  LABEL,
  sandboxPod,
  volumeClaimName,
} from "./objects.js";
import type { ImageTemplates } from "./templates.js";

/** What `wake` needs to make the Pod again, kept on the sandbox's /workspace claim. */
export const SPEC_ANNOTATION = "berth.dev/spec";

/** The part of a sandbox's spec kept on its claim (under SPEC_ANNOTATION). */
export type KeptSpec = Pick<SandboxSpec, "template" | "resources" | "env"> & {
  volumes: SandboxSpec["volumes"];
};

/** The driver's settings that shape every Pod, and the warm pool's. */
export interface PodShapeOptions {
  initImage: string;
  runtimeClass?: string;
  storageClass?: string;
  warmPods?: number;
  defaultResources: Resources;
  gateway?: GatewayTarget;
  claudePath?: string;
  /** The warm pool's key: which shape its Pods have. */
  poolKey: string;
  images: ImageTemplates;
}

/** The Kubernetes objects a sandbox is made of, as this driver's settings shape them. */
export class PodShapes {
  constructor(private readonly o: PodShapeOptions) {}

  /** The Pod and /workspace claim of a sandbox (or, with `id` null, of a warm Pod) named `name`. */
  objects(name: string, id: string | null, kept: KeptSpec): { pod: V1Pod; claim: V1PersistentVolumeClaim } {
    const claimName = id ? dataClaimName(id) : `${name}-data`;
    const labels: Record<string, string> = { [LABEL.role]: "data" };
    if (id) labels[LABEL.sandbox] = id;
    else labels[LABEL.pool] = this.o.poolKey;
    const c = claim({
      name: claimName,
      sizeMiB: kept.resources.diskMiB,
      labels,
      storageClass: this.o.storageClass,
    });
    c.metadata = { ...c.metadata, annotations: { [SPEC_ANNOTATION]: JSON.stringify(kept) } };
    const pod = sandboxPod({
      name,
      sandbox: id,
      pool: id ? undefined : this.o.poolKey,
      template: kept.template,
      image: this.o.images.image(kept.template),
      initImage: this.o.initImage,
      resources: kept.resources,
      env: kept.env,
      dataClaim: claimName,
      volumes: (kept.volumes ?? []).map((v) => ({ claim: volumeClaimName(v.id), mountPath: v.mountPath })),
      runtimeClass: this.o.runtimeClass,
      copyClaude: !!this.o.gateway && (this.o.claudePath ?? DEFAULT_CLAUDE_PATH) === DEFAULT_CLAUDE_PATH,
    });
    return { pod, claim: c };
  }

  /** Whether a warm Pod can serve this spec: the default shape, nothing to restore or mount. */
  poolable(spec: SandboxSpec): boolean {
    const r = this.o.defaultResources;
    return (
      (this.o.warmPods ?? 0) > 0 &&
      spec.template === "default" &&
      !spec.fromSnapshot &&
      !(spec.volumes ?? []).length &&
      spec.resources.cpus === r.cpus &&
      spec.resources.memoryMiB === r.memoryMiB &&
      spec.resources.diskMiB === r.diskMiB &&
      spec.resources.pids === r.pids
    );
  }
}
