import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import type { Duplex } from "node:stream";
import {
  CapabilityRuntime,
  ConflictError,
  checkMountPath,
  KeyedLock,
  type Logger,
  NotFoundError,
  NotSupportedError,
  type Resources,
  type RuntimeInfo,
  type RuntimeStatus,
  type SandboxAddressing,
  SandboxError,
  type SandboxSpec,
  type SandboxStats,
  silentLogger,
} from "@berth/core";
import { SupervisorClient } from "@berth/supervisor";
import type { KubeConfig } from "@kubernetes/client-node";
import { Cluster } from "./cluster.js";
import { PodEgress } from "./egress.js";
import { archiveWorkspace, podOomKills, podStats, restoreWorkspace } from "./in-pod.js";
import {
  dataClaimName,
  type GatewayTarget,
  LABEL,
  MANAGED_BY,
  podName,
  policyName,
  SUPERVISOR_PORT,
  volumeClaimName,
} from "./objects.js";
import { type KeptSpec, PodShapes, SPEC_ANNOTATION } from "./pod-shapes.js";
import { failure, isEnded, isRunning, pendingReason } from "./pod-status.js";
import { SANDBOX_ID, SandboxPods } from "./sandbox-pods.js";
import { ImageTemplates } from "./templates.js";
import { ClaimVolumes } from "./volumes.js";
import { WarmPods } from "./warm-pods.js";

/** Options of the Kubernetes runtime. */
export interface KubernetesRuntimeOptions {
  /** Where the API server is and how to authenticate (in-cluster, KUBECONFIG or ~/.kube/config). */
  kubeConfig: KubeConfig;
  /** The namespace of sandbox Pods, their claims and policies. */
  namespace: string;
  /** Template name -> image (`default` must be there). */
  images: Record<string, string>;
  /** An image with the static berth-init at /opt/berth/berth-init (the Berth image). */
  initImage: string;
  runtimeClass?: string;
  storageClass?: string;
  /** Pre-created Pods of the default shape (template `default`, `defaultResources`). */
  warmPods?: number;
  defaultResources: Resources;
  /** How long a Pod may take to start (scheduling, image pull); default 5 minutes. */
  startTimeoutMs?: number;
  /** How long one API call may take before it fails; default 30 s. */
  apiTimeoutMs?: number;
  /** This server's model gateway as Pods reach it (unset: no agent sessions on this driver). */
  gateway?: GatewayTarget;
  /** Ranges Pods' addresses come from (the gateway admits only these). */
  podCidrs?: string[];
  /** Where agents' `claude` is inside Pods; the default path is copied in from the init image. */
  claudePath?: string;
  /** DNS server the egress proxy resolves names with (`ip[:port]`; unset: the host's). */
  dnsUpstream?: string;
  log?: Logger;
}

/**
 * Sandboxes as Pods (see objects.ts for their shape). The server reaches each Pod's berth-init
 * through the API server's port-forward; /workspace lives on a PersistentVolumeClaim, so
 * hibernate deletes the Pod and wake makes it again on the same claim; the egress policy is a
 * NetworkPolicy. Kubernetes cannot freeze a Pod: pause answers 501.
 */
export class KubernetesRuntime extends CapabilityRuntime {
  readonly name = "kubernetes";
  private readonly cluster: Cluster;
  private readonly log: Logger;
  private readonly lock = new KeyedLock();
  private readonly pods: SandboxPods;
  private readonly pool: WarmPods;
  /** The warm pool's key: which shape its Pods have (a changed image or default makes a new pool). */
  private readonly poolKey: string;
  protected readonly egress: PodEgress;
  protected readonly sandboxVolumes: ClaimVolumes;
  protected readonly catalog: ImageTemplates;
  private readonly shapes: PodShapes;
  readonly addressing: SandboxAddressing;

  constructor(private readonly o: KubernetesRuntimeOptions) {
    super();
    this.log = o.log ?? silentLogger;
    this.cluster = new Cluster(o.kubeConfig, o.namespace, this.log, o.apiTimeoutMs);
    const shape = { template: "default", resources: o.defaultResources, env: {}, volumes: [] };
    this.poolKey = createHash("sha256")
      .update(JSON.stringify([o.images.default, o.initImage, o.runtimeClass, o.defaultResources]))
      .digest("hex")
      .slice(0, 12);
    this.pods = new SandboxPods(this.cluster);
    this.catalog = new ImageTemplates(o.images);
    this.shapes = new PodShapes({ ...o, poolKey: this.poolKey, images: this.catalog });
    this.egress = new PodEgress(this.cluster, this.pods, {
      gateway: o.gateway,
      podCidrs: o.podCidrs,
      dnsUpstream: o.dnsUpstream,
      lock: this.lock,
      log: this.log,
    });
    this.addressing = this.egress;
    this.sandboxVolumes = new ClaimVolumes(this.cluster, {
      storageClass: o.storageClass,
      client: (id) => this.client(id),
    });
    this.pool = new WarmPods({
      cluster: this.cluster,
      size: o.warmPods ?? 0,
      key: this.poolKey,
      build: (name) => this.shapes.objects(name, null, shape),
      log: this.log,
    });
  }

  async start(): Promise<void> {
    if (!this.o.images.default)
      throw new SandboxError("BERTH_K8S_IMAGES must name an image for template 'default'");
    // Reading the namespace's pods checks the address, the credentials and the rights at once.
    await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`);
    await this.egress.start();
    await this.pool.fill();
    this.log.info(
      { namespace: this.o.namespace, warmPods: this.o.warmPods ?? 0 },
      "kubernetes runtime ready",
    );
  }

  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    return this.createUnderLock(spec, {
      lock: this.lock,
      log: this.log,
      build: () => this.build(spec, signal),
      teardown: () => this.teardown(spec.id),
    });
  }

  private async build(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    this.catalog.image(spec.template);
    for (const v of spec.volumes ?? []) checkMountPath(v.mountPath);
    if ((await this.pods.find(spec.id)) || (await this.cluster.readClaim(dataClaimName(spec.id))))
      throw new ConflictError(`sandbox '${spec.id}' already exists`);
    // The policy first: the Pod is never up without it.
    await this.egress.apply(spec.id, spec.network);
    if (this.shapes.poolable(spec)) {
      const taken = await this.pool.take(spec.id);
      if (taken) {
        this.pods.assign(spec.id, taken);
        await this.waitSupervisor(spec.id, taken, signal);
        return { pod: taken, warm: true };
      }
    }
    for (const v of spec.volumes ?? [])
      if (!(await this.cluster.readClaim(volumeClaimName(v.id)))) throw new NotFoundError("volume", v.id);
    const kept: KeptSpec = {
      template: spec.template,
      resources: spec.resources,
      env: spec.env,
      volumes: spec.volumes,
    };
    const { pod, claim } = this.shapes.objects(podName(spec.id), spec.id, kept);
    await this.cluster.createClaim(claim);
    await this.cluster.createPod(pod);
    this.pods.assign(spec.id, podName(spec.id));
    await this.waitSupervisor(spec.id, podName(spec.id), signal);
    if (spec.fromSnapshot) await restoreWorkspace(this.client(spec.id), spec.fromSnapshot);
    return { pod: podName(spec.id) };
  }

  /**
   * Waits until the Pod runs and its berth-init answers through the port-forward; fails at once
   * on what will not heal by waiting (an image that cannot be pulled, a container that exited).
   */
  private async waitSupervisor(id: string, name: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 5 * 60_000);
    let reported = "";
    for (let i = 0; ; i++) {
      signal?.throwIfAborted();
      if (Date.now() > deadline)
        throw new SandboxError(
          `the sandbox's pod did not start in ${Math.round((this.o.startTimeoutMs ?? 300_000) / 1000)} s${reported ? ` (${reported})` : ""}`,
        );
      const pod = await this.cluster.readPod(name);
      if (!pod) throw new SandboxError("the sandbox's pod was deleted while it started");
      const why = failure(pod);
      if (why) throw new SandboxError(`the sandbox's pod failed to start: ${why}`);
      if (isRunning(pod)) {
        this.pods.rememberIp(id, pod);
        const ok = await this.client(id)
          .ping()
          .then(
            () => true,
            () => false,
          );
        if (ok) return;
      } else {
        const waiting = pendingReason(pod);
        if (waiting && waiting !== reported) {
          reported = waiting;
          this.log.info({ id, pod: name, waiting }, "sandbox pod starting");
        }
      }
      await new Promise((r) => setTimeout(r, i < 20 ? 50 : 250));
    }
  }

  async connect(id: string): Promise<Duplex> {
    const name = SANDBOX_ID.test(id) ? await this.pods.nameOf(id) : null;
    if (!name) throw new NotFoundError("sandbox", id);
    return this.cluster.portForward(name, SUPERVISOR_PORT);
  }

  async inspect(id: string): Promise<RuntimeStatus> {
    if (!SANDBOX_ID.test(id)) return { state: "missing", oomKills: 0 };
    const pod = await this.pods.find(id);
    if (!pod) {
      const kept =
        (await this.cluster.readClaim(dataClaimName(id))) ??
        (await this.cluster.listClaims(`${LABEL.sandbox}=${id}`))[0];
      return { state: kept ? "stopped" : "missing", oomKills: 0 };
    }
    const sandbox = pod.status?.containerStatuses?.find((c) => c.name === "sandbox");
    const killed = sandbox?.state?.terminated?.reason === "OOMKilled" ? 1 : 0;
    if (isEnded(pod) || sandbox?.state?.terminated) return { state: "stopped", oomKills: killed };
    if (!isRunning(pod)) return { state: "running", oomKills: 0 };
    return { state: "running", oomKills: await podOomKills(this.client(id)) };
  }

  async stats(id: string): Promise<SandboxStats> {
    if (!(await this.pods.running(id))) throw new NotFoundError("sandbox", id);
    const { oomKills: _, ...s } = await podStats(this.client(id));
    return s;
  }

  async pause(_id: string): Promise<void> {
    throw new NotSupportedError(
      "the kubernetes driver cannot freeze a pod (Kubernetes has no pause): hibernate it instead",
    );
  }

  async resume(_id: string): Promise<void> {
    throw new NotSupportedError(
      "the kubernetes driver cannot freeze a pod (Kubernetes has no pause): hibernate it instead",
    );
  }

  /** Deletes the Pod (every process ends, its node frees the memory); /workspace stays on its claim. */
  hibernate(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const pod = await this.pods.find(id);
      if (!pod) throw new NotFoundError("sandbox", id);
      await this.pods.deleteAndWait(pod.metadata?.name ?? "");
      this.pods.forgetIp(id);
    });
  }

  /** Makes the Pod again on the sandbox's claim, from the spec kept on that claim. */
  wake(id: string): Promise<RuntimeInfo> {
    return this.lock.run(id, async () => {
      if (await this.pods.find(id)) throw new ConflictError(`sandbox '${id}' is not hibernated`);
      const data = (await this.cluster.listClaims(`${LABEL.sandbox}=${id},${LABEL.role}=data`))[0];
      const raw = data?.metadata?.annotations?.[SPEC_ANNOTATION];
      if (!data?.metadata?.name || !raw) throw new NotFoundError("sandbox", id);
      const kept = JSON.parse(raw) as KeptSpec;
      const { pod } = this.shapes.objects(podName(id), id, kept);
      const vol = pod.spec?.volumes?.find((v) => v.name === "data");
      if (vol?.persistentVolumeClaim) vol.persistentVolumeClaim.claimName = data.metadata.name;
      await this.cluster.createPod(pod);
      this.pods.assign(id, podName(id));
      await this.waitSupervisor(id, podName(id));
      return { pod: podName(id) };
    });
  }

  /** Writes /workspace as a gzipped tar (not frozen while read: Kubernetes cannot pause a Pod). */
  snapshot(id: string, dest: string): Promise<number> {
    return this.lock.run(id, async () => {
      if (!(await this.pods.running(id))) throw new NotFoundError("sandbox", id);
      await archiveWorkspace(this.client(id), dest);
      return statSync(dest).size;
    });
  }

  destroy(id: string): Promise<void> {
    if (!SANDBOX_ID.test(id)) return Promise.resolve();
    return this.lock.run(id, () => this.teardown(id));
  }

  /** Deletes the sandbox's Pod, claims and policy (each delete is idempotent). */
  private async teardown(id: string): Promise<void> {
    const selector = `${LABEL.sandbox}=${id}`;
    for (const p of await this.cluster.listPods(selector))
      await this.cluster.deletePod(p.metadata?.name ?? "");
    await this.cluster.deletePod(podName(id));
    for (const c of await this.cluster.listClaims(selector))
      await this.cluster.deleteClaim(c.metadata?.name ?? "");
    await this.cluster.deletePolicy(policyName(id));
    this.pods.forget(id);
    this.egress.forget(id);
  }

  async list(): Promise<string[]> {
    const managed = `${LABEL.managedBy}=${MANAGED_BY}`;
    const ids = new Set<string>();
    for (const items of [
      await this.cluster.listPods(managed),
      await this.cluster.listClaims(managed),
      await this.cluster.listPolicies(managed),
    ])
      for (const o of items) {
        const id = o.metadata?.labels?.[LABEL.sandbox];
        if (id && SANDBOX_ID.test(id)) ids.add(id);
      }
    return [...ids].sort();
  }

  async close(): Promise<void> {
    this.egress.close();
    await this.pool.close(false);
  }

  /** Deletes the warm Pods (tests, uninstall). */
  async drainWarmPods(): Promise<void> {
    await this.pool.close(true);
  }

  private client(id: string): SupervisorClient {
    return new SupervisorClient(() => this.connect(id));
  }
}
