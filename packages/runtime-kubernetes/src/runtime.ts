import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import type { Duplex } from "node:stream";
import {
  ConflictError,
  checkMountPath,
  type EgressMode,
  InvalidRequestError,
  KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotFoundError,
  NotSupportedError,
  type Resources,
  type Runtime,
  type RuntimeInfo,
  type RuntimeStatus,
  type SandboxAddressing,
  SandboxError,
  type SandboxSpec,
  type SandboxStats,
  silentLogger,
  type TemplateInfo,
} from "@berth/core";
import { SupervisorClient } from "@berth/supervisor";
import type { KubeConfig, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { Cluster } from "./cluster.js";
import { PodEgressProxy } from "./egress-proxy.js";
import { archiveWorkspace, podOomKills, podStats, restoreWorkspace, runText } from "./in-pod.js";
import {
  ANNOTATION,
  claim,
  DEFAULT_CLAUDE_PATH,
  dataClaimName,
  egressPolicy,
  type GatewayTarget,
  gatewayKey,
  LABEL,
  MANAGED_BY,
  podName,
  policyName,
  SUPERVISOR_PORT,
  sandboxPod,
  volumeClaimName,
} from "./objects.js";
import { failure, isEnded, isRunning, pendingReason } from "./pod-status.js";
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

const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** What `wake` needs to make the Pod again, kept on the sandbox's /workspace claim. */
const SPEC_ANNOTATION = "berth.dev/spec";
type KeptSpec = Pick<SandboxSpec, "template" | "resources" | "env"> & { volumes: SandboxSpec["volumes"] };

/**
 * Sandboxes as Pods (see objects.ts for their shape). The server reaches each Pod's berth-init
 * through the API server's port-forward; /workspace lives on a PersistentVolumeClaim, so
 * hibernate deletes the Pod and wake makes it again on the same claim; the egress policy is a
 * NetworkPolicy. Kubernetes cannot freeze a Pod: pause answers 501.
 */
export class KubernetesRuntime implements Runtime {
  readonly name = "kubernetes";
  readonly egressModes: readonly EgressMode[] = ["none", "open", "allowlist"];
  private readonly cluster: Cluster;
  private readonly log: Logger;
  private readonly lock = new KeyedLock();
  /** Sandbox id -> its Pod's name (a taken warm Pod keeps its own name). */
  private readonly pods = new Map<string, string>();
  private readonly pool: WarmPods;
  /** The warm pool's key: which shape its Pods have (a changed image or default makes a new pool). */
  private readonly poolKey: string;
  private readonly startedAt = new Date().toISOString();
  /** Hostname allowlists' filter (with a gateway address and a proxy port). */
  private readonly proxy: PodEgressProxy | null;
  /** Sandbox id -> its egress policy as last applied (the proxy's view). */
  private readonly policies = new Map<string, NetworkPolicy>();
  /** Pod IP -> sandbox id, for the proxy (refreshed from the API when an address is unknown). */
  private podIps = new Map<string, string>();
  private podIpsReadAt = 0;

  constructor(private readonly o: KubernetesRuntimeOptions) {
    this.log = o.log ?? silentLogger;
    this.cluster = new Cluster(o.kubeConfig, o.namespace, this.log, o.apiTimeoutMs);
    const shape = { template: "default", resources: o.defaultResources, env: {}, volumes: [] };
    this.poolKey = createHash("sha256")
      .update(JSON.stringify([o.images.default, o.initImage, o.runtimeClass, o.defaultResources]))
      .digest("hex")
      .slice(0, 12);
    this.proxy = o.gateway?.proxyPort
      ? new PodEgressProxy({ policyOf: (ip) => this.policyOfPod(ip), resolver: o.dnsUpstream, log: this.log })
      : null;
    this.pool = new WarmPods({
      cluster: this.cluster,
      size: o.warmPods ?? 0,
      key: this.poolKey,
      build: (name) => this.objects(name, null, shape),
      log: this.log,
    });
  }

  async start(): Promise<void> {
    if (!this.o.images.default)
      throw new SandboxError("BERTH_K8S_IMAGES must name an image for template 'default'");
    // Reading the namespace's pods checks the address, the credentials and the rights at once.
    await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`);
    await this.repointGateway();
    if (this.proxy && this.o.gateway?.proxyPort) await this.proxy.start(this.o.gateway.proxyPort);
    await this.pool.fill();
    this.log.info(
      { namespace: this.o.namespace, warmPods: this.o.warmPods ?? 0 },
      "kubernetes runtime ready",
    );
  }

  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    if (!ID.test(spec.id))
      return Promise.reject(new InvalidRequestError("invalid sandbox id", { field: "id" }));
    return this.lock.run(spec.id, async () => {
      try {
        return await this.build(spec, signal);
      } catch (err) {
        this.log.warn({ id: spec.id, err: String(err) }, "create failed");
        await this.teardown(spec.id).catch(() => {});
        throw err;
      }
    });
  }

  private async build(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    this.image(spec.template);
    for (const v of spec.volumes ?? []) checkMountPath(v.mountPath);
    if ((await this.findPod(spec.id)) || (await this.cluster.readClaim(dataClaimName(spec.id))))
      throw new ConflictError(`sandbox '${spec.id}' already exists`);
    // The policy first: the Pod is never up without it.
    await this.cluster.applyPolicy(egressPolicy(spec.id, spec.network, this.o.gateway));
    this.policies.set(spec.id, spec.network);
    if (this.poolable(spec)) {
      const taken = await this.pool.take(spec.id);
      if (taken) {
        this.pods.set(spec.id, taken);
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
    const { pod, claim } = this.objects(podName(spec.id), spec.id, kept);
    await this.cluster.createClaim(claim);
    await this.cluster.createPod(pod);
    this.pods.set(spec.id, podName(spec.id));
    await this.waitSupervisor(spec.id, podName(spec.id), signal);
    if (spec.fromSnapshot) await restoreWorkspace(this.client(spec.id), spec.fromSnapshot);
    return { pod: podName(spec.id) };
  }

  /** The Pod and /workspace claim of a sandbox (or, with `id` null, of a warm Pod) named `name`. */
  private objects(
    name: string,
    id: string | null,
    kept: KeptSpec,
  ): { pod: V1Pod; claim: V1PersistentVolumeClaim } {
    const claimName = id ? dataClaimName(id) : `${name}-data`;
    const labels: Record<string, string> = { [LABEL.role]: "data" };
    if (id) labels[LABEL.sandbox] = id;
    else labels[LABEL.pool] = this.poolKey;
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
      pool: id ? undefined : this.poolKey,
      template: kept.template,
      image: this.image(kept.template),
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

  /**
   * After this replica's gateway moved (a restarted server Pod has a new IP), its sandboxes'
   * policies still allow the old address: rewrite them from the egress policy each one keeps.
   */
  private async repointGateway(): Promise<void> {
    const g = this.o.gateway;
    if (!g) return;
    const mine = await this.cluster.listPolicies(
      `${LABEL.managedBy}=${MANAGED_BY},${LABEL.replica}=${g.replica}`,
    );
    for (const p of mine) {
      const id = p.metadata?.labels?.[LABEL.sandbox];
      const kept = p.metadata?.annotations?.[ANNOTATION.network];
      if (!id || !ID.test(id) || !kept || p.metadata?.annotations?.[ANNOTATION.gateway] === gatewayKey(g))
        continue;
      await this.cluster.applyPolicy(egressPolicy(id, JSON.parse(kept) as NetworkPolicy, g));
      this.log.info({ id, gateway: gatewayKey(g) }, "sandbox policy re-pointed at this server's gateway");
    }
  }

  /** Whether a warm Pod can serve this spec: the default shape, nothing to restore or mount. */
  private poolable(spec: SandboxSpec): boolean {
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
        this.rememberPodIp(id, pod);
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
    const name = ID.test(id) ? await this.podOf(id) : null;
    if (!name) throw new NotFoundError("sandbox", id);
    return this.cluster.portForward(name, SUPERVISOR_PORT);
  }

  async inspect(id: string): Promise<RuntimeStatus> {
    if (!ID.test(id)) return { state: "missing", oomKills: 0 };
    const pod = await this.findPod(id);
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
    if (!(await this.runningPod(id))) throw new NotFoundError("sandbox", id);
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
      const pod = await this.findPod(id);
      if (!pod) throw new NotFoundError("sandbox", id);
      await this.deletePodAndWait(pod.metadata?.name ?? "");
      this.forgetPodIp(id);
    });
  }

  /** Where a running Pod of a sandbox sends from (the model gateway takes the sandbox's token only from there). */
  private rememberPodIp(id: string, pod: V1Pod): void {
    const ip = pod.status?.podIP;
    if (!ip || !isRunning(pod)) return;
    this.forgetPodIp(id);
    this.podIps.set(ip, id);
  }

  /** A Pod gone: its address may go to another sandbox's Pod next. */
  private forgetPodIp(id: string): void {
    for (const [ip, owner] of this.podIps) if (owner === id) this.podIps.delete(ip);
  }

  /** Makes the Pod again on the sandbox's claim, from the spec kept on that claim. */
  wake(id: string): Promise<RuntimeInfo> {
    return this.lock.run(id, async () => {
      if (await this.findPod(id)) throw new ConflictError(`sandbox '${id}' is not hibernated`);
      const data = (await this.cluster.listClaims(`${LABEL.sandbox}=${id},${LABEL.role}=data`))[0];
      const raw = data?.metadata?.annotations?.[SPEC_ANNOTATION];
      if (!data?.metadata?.name || !raw) throw new NotFoundError("sandbox", id);
      const kept = JSON.parse(raw) as KeptSpec;
      const { pod } = this.objects(podName(id), id, kept);
      const vol = pod.spec?.volumes?.find((v) => v.name === "data");
      if (vol?.persistentVolumeClaim) vol.persistentVolumeClaim.claimName = data.metadata.name;
      await this.cluster.createPod(pod);
      this.pods.set(id, podName(id));
      await this.waitSupervisor(id, podName(id));
      return { pod: podName(id) };
    });
  }

  /** Writes /workspace as a gzipped tar (not frozen while read: Kubernetes cannot pause a Pod). */
  snapshot(id: string, dest: string): Promise<number> {
    return this.lock.run(id, async () => {
      if (!(await this.runningPod(id))) throw new NotFoundError("sandbox", id);
      await archiveWorkspace(this.client(id), dest);
      return statSync(dest).size;
    });
  }

  destroy(id: string): Promise<void> {
    if (!ID.test(id)) return Promise.resolve();
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
    this.pods.delete(id);
    this.policies.delete(id);
    this.forgetPodIp(id);
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
        if (id && ID.test(id)) ids.add(id);
      }
    return [...ids].sort();
  }

  async close(): Promise<void> {
    this.proxy?.close();
    await this.pool.close(false);
  }

  /** Deletes the warm Pods (tests, uninstall). */
  async drainWarmPods(): Promise<void> {
    await this.pool.close(true);
  }

  /** A volume is a claim of `sizeMiB` (ReadWriteOnce: sandboxes sharing it must land on one node). */
  async createVolume(id: string, sizeMiB: number): Promise<void> {
    await this.cluster.createClaim(
      claim({
        name: volumeClaimName(id),
        sizeMiB,
        labels: { [LABEL.role]: "volume" },
        storageClass: this.o.storageClass,
      }),
    );
  }

  async deleteVolume(id: string): Promise<void> {
    await this.cluster.deleteClaim(volumeClaimName(id));
  }

  /** Bytes in use, measured in a running sandbox that mounts the volume; 0 while none does. */
  async volumeUsage(id: string): Promise<number> {
    if (!(await this.cluster.readClaim(volumeClaimName(id)))) throw new NotFoundError("volume", id);
    for (const pod of await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`)) {
      const sandbox = pod.metadata?.labels?.[LABEL.sandbox];
      const vol = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim?.claimName === volumeClaimName(id));
      const mount = pod.spec?.containers[0]?.volumeMounts?.find((m) => m.name === vol?.name);
      if (!sandbox || !vol || !mount || !isRunning(pod)) continue;
      const { out, status } = await runText(this.client(sandbox), ["du", "-sk", mount.mountPath]);
      const kib = /^(\d{1,15})\s/.exec(out);
      if (status.exitCode === 0 && kib) return Number(kib[1]) * 1024;
    }
    return 0;
  }

  /** Where sandboxes are: the Pod's source address, the gateway's address, the Pod CIDRs. */
  readonly addressing: SandboxAddressing = {
    // Not `address`: the server does not connect to Pods directly (their policy may drop it).
    address: () => null,
    sourceAddress: (id) => this.sourceAddress(id),
    hostAddress: (id) => this.hostAddress(id),
    sandboxCidrs: () => this.sandboxCidrs(),
    processEnv: (id) => this.processEnv(id),
  };

  /**
   * The address the sandbox's running Pod sends from, as last read from the API server (null: not
   * known). Not `address`: the server does not connect to Pods directly (their policy may drop it).
   */
  sourceAddress(id: string): string | null {
    for (const [ip, owner] of this.podIps) if (owner === id) return ip;
    return null;
  }

  /** The model gateway's address as every Pod of this replica reaches it (its policy allows it). */
  hostAddress(_id: string): string | null {
    return this.o.gateway?.address ?? null;
  }

  sandboxCidrs(): string[] {
    return this.o.gateway ? (this.o.podCidrs ?? []) : [];
  }

  /** With the egress proxy: its address for every process (the gateway is reached directly). */
  processEnv(_id: string): Record<string, string> {
    const g = this.o.gateway;
    if (!g?.proxyPort) return {};
    const url = `http://${g.address}:${g.proxyPort}`;
    const direct = `localhost,127.0.0.1,::1,${g.address}`;
    return {
      HTTP_PROXY: url,
      HTTPS_PROXY: url,
      http_proxy: url,
      https_proxy: url,
      NO_PROXY: direct,
      no_proxy: direct,
    };
  }

  /** The egress policy of the sandbox whose Pod has `ip` (null: none of this namespace's sandboxes). */
  private async policyOfPod(ip: string): Promise<NetworkPolicy | null> {
    let id = this.podIps.get(ip);
    if (!id && Date.now() - this.podIpsReadAt > 1000) {
      this.podIpsReadAt = Date.now();
      const next = new Map<string, string>();
      for (const p of await this.cluster.listPods(`${LABEL.managedBy}=${MANAGED_BY}`)) {
        const sandbox = p.metadata?.labels?.[LABEL.sandbox];
        if (sandbox && p.status?.podIP && isRunning(p)) next.set(p.status.podIP, sandbox);
      }
      this.podIps = next;
      id = next.get(ip);
    }
    if (!id) return null;
    const known = this.policies.get(id);
    if (known) return known;
    // After a restart: the policy kept on the sandbox's NetworkPolicy.
    const kept = (await this.cluster.listPolicies(`${LABEL.sandbox}=${id}`))[0]?.metadata?.annotations?.[
      ANNOTATION.network
    ];
    if (!kept) return null;
    const policy = JSON.parse(kept) as NetworkPolicy;
    this.policies.set(id, policy);
    return policy;
  }

  async setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    await this.lock.run(id, async () => {
      if (!(await this.findPod(id)) && !(await this.cluster.readClaim(dataClaimName(id))))
        throw new NotFoundError("sandbox", id);
      await this.cluster.applyPolicy(egressPolicy(id, policy, this.o.gateway));
      this.policies.set(id, policy);
    });
  }

  async listTemplates(): Promise<TemplateInfo[]> {
    return Object.entries(this.o.images).map(([name, image]) => ({
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

  private image(template: string): string {
    const image = this.o.images[template];
    if (!image) throw new NotFoundError("template", template);
    return image;
  }

  private client(id: string): SupervisorClient {
    return new SupervisorClient(() => this.connect(id));
  }

  /** The sandbox's Pod, by its own name or (a taken warm Pod) by its label. */
  private async findPod(id: string): Promise<V1Pod | null> {
    const known = this.pods.get(id) ?? podName(id);
    const pod = await this.cluster.readPod(known);
    if (pod?.metadata?.labels?.[LABEL.sandbox] === id && !pod.metadata.deletionTimestamp) {
      this.rememberPodIp(id, pod);
      return pod;
    }
    const found = (await this.cluster.listPods(`${LABEL.sandbox}=${id}`)).find(
      (p) => !p.metadata?.deletionTimestamp,
    );
    if (found?.metadata?.name) {
      this.pods.set(id, found.metadata.name);
      this.rememberPodIp(id, found);
    } else this.pods.delete(id);
    return found ?? null;
  }

  private async podOf(id: string): Promise<string | null> {
    return this.pods.get(id) ?? (await this.findPod(id))?.metadata?.name ?? null;
  }

  private async runningPod(id: string): Promise<V1Pod | null> {
    const pod = await this.findPod(id);
    return pod && isRunning(pod) ? pod : null;
  }

  private async deletePodAndWait(name: string): Promise<void> {
    await this.cluster.deletePod(name);
    for (let i = 0; i < 600 && (await this.cluster.readPod(name)); i++)
      await new Promise((r) => setTimeout(r, i < 20 ? 50 : 250));
  }
}

const TEMPLATES_ARE_IMAGES =
  "templates on the kubernetes driver are container images named in BERTH_K8S_IMAGES: build and push an image, then add it there";
