/**
 * The Kubernetes objects of a sandbox, built as plain data: its Pod, the PersistentVolumeClaim
 * that keeps its /workspace across hibernate, and the NetworkPolicy that is its egress policy.
 * Pure functions (unit tested); the runtime sends what they return.
 */

import { type NetworkPolicy, NotSupportedError, parseAllowlist, type Resources } from "@berth/core";
import type { V1NetworkPolicy, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";

/** Labels and annotations of Berth's objects (selectors find a sandbox's objects by them). */
export const LABEL = {
  managedBy: "app.kubernetes.io/managed-by",
  sandbox: "berth.dev/sandbox",
  template: "berth.dev/template",
  /** On pre-created Pods (and their claims) waiting in the warm pool: the pool's key. */
  pool: "berth.dev/warm-pool",
  /** `data` on a sandbox's /workspace claim, `volume` on a Berth volume's. */
  role: "berth.dev/role",
  /** On a sandbox's NetworkPolicy: the replica whose model gateway its rule lets the Pod reach. */
  replica: "berth.dev/replica",
} as const;
/** On a sandbox's NetworkPolicy: its egress policy as the API gave it, and the gateway it allows. */
export const ANNOTATION = { network: "berth.dev/network", gateway: "berth.dev/gateway" } as const;
export const MANAGED_BY = "berth";

/** Where berth-init listens inside a pod (loopback only; the API server's port-forward dials it). */
export const SUPERVISOR_PORT = 49990;
/** In the init image: the static berth-init the initContainer copies into the pod. */
export const INIT_IMAGE_PATH = "/opt/berth/berth-init";
/** In the init image: the Claude Agent SDK's native `claude`, copied in when agents use the default path. */
export const CLAUDE_IMAGE_PATH = "/opt/berth/claude";
const INIT_DIR = "/.berth";
/** Where the copied `claude` is inside a sandbox Pod (BERTH_K8S_CLAUDE_PATH's default). */
export const DEFAULT_CLAUDE_PATH = `${INIT_DIR}/claude`;
const SANDBOX_UID = 1000;

/** Ranges an `open` sandbox may not reach: the cluster's and the host's private networks. */
const PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"];

/** What the pod builder needs besides the sandbox's spec. */
export interface PodOptions {
  name: string;
  /** The sandbox id (its hostname), or null for a pre-created warm Pod. */
  sandbox: string | null;
  pool?: string;
  template: string;
  image: string;
  initImage: string;
  resources: Resources;
  env: Record<string, string>;
  dataClaim: string;
  volumes: { claim: string; mountPath: string }[];
  runtimeClass?: string;
  /** Copy `claude` in from the init image too (agent sessions with the default claude path). */
  copyClaude?: boolean;
}

/** Where a sandbox's model gateway is: this replica's address and port as Pods reach them. */
export interface GatewayTarget {
  address: string;
  port: number;
  /** The replica the gateway belongs to (its policies are re-pointed when its address changes). */
  replica: string;
  /** The egress proxy's port at the same address (hostname allowlists); unset: no proxy. */
  proxyPort?: number;
}

/** Object names: DNS labels, `berth-` + the sandbox id (ids are at most 32 characters). */
export const podName = (id: string) => `berth-${id}`;
export const dataClaimName = (id: string) => `berth-${id}-data`;
export const volumeClaimName = (volumeId: string) => `berth-vol-${volumeId}`;
export const policyName = (id: string) => `berth-${id}`;

/**
 * A sandbox Pod: an initContainer copies berth-init out of the init image into an emptyDir, the
 * sandbox container (the template's image) runs it as PID 1 as uid 1000 with no capabilities,
 * no privilege escalation and the runtime's default seccomp profile; it never restarts (a
 * sandbox whose init died is `stopped`). No service account token, no service links.
 */
export function sandboxPod(o: PodOptions): V1Pod {
  const labels: Record<string, string> = { [LABEL.managedBy]: MANAGED_BY, [LABEL.template]: o.template };
  if (o.sandbox) labels[LABEL.sandbox] = o.sandbox;
  if (o.pool) labels[LABEL.pool] = o.pool;
  const memory = `${o.resources.memoryMiB}Mi`;
  const locked = {
    runAsUser: SANDBOX_UID,
    runAsGroup: SANDBOX_UID,
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
  // initContainers copy binaries out of the init image into the Pod's `berth` emptyDir.
  const copy = (name: string, from: string, to: string, memoryLimit: string) => ({
    name,
    image: o.initImage,
    command: ["cp", from, to],
    securityContext: locked,
    resources: { limits: { cpu: "100m", memory: memoryLimit } },
    volumeMounts: [{ name: "berth", mountPath: INIT_DIR }],
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: o.name, labels },
    spec: {
      ...(o.sandbox ? { hostname: o.sandbox } : {}),
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 2,
      ...(o.runtimeClass ? { runtimeClassName: o.runtimeClass } : {}),
      securityContext: { fsGroup: SANDBOX_UID, runAsNonRoot: true },
      initContainers: [
        copy("berth-init", INIT_IMAGE_PATH, `${INIT_DIR}/init`, "32Mi"),
        ...(o.copyClaude ? [copy("claude", CLAUDE_IMAGE_PATH, DEFAULT_CLAUDE_PATH, "64Mi")] : []),
      ],
      containers: [
        {
          name: "sandbox",
          image: o.image,
          command: [`${INIT_DIR}/init`],
          workingDir: "/workspace",
          env: [
            ...Object.entries(o.env).map(([name, value]) => ({ name, value })),
            { name: "HOME", value: "/home/user" },
            { name: "BERTH_LISTEN_PORT", value: String(SUPERVISOR_PORT) },
            { name: "BERTH_STATE_DIR", value: "/run/berth" },
          ],
          securityContext: locked,
          resources: {
            // Memory is reserved (it cannot be taken back); CPU is shared above a tenth of the limit.
            requests: { cpu: `${Math.max(10, Math.round(o.resources.cpus * 100))}m`, memory },
            limits: {
              cpu: `${Math.round(o.resources.cpus * 1000)}m`,
              memory,
              "ephemeral-storage": `${o.resources.diskMiB}Mi`,
            },
          },
          volumeMounts: [
            { name: "berth", mountPath: INIT_DIR, readOnly: true },
            { name: "state", mountPath: "/run/berth" },
            { name: "home", mountPath: "/home/user" },
            { name: "data", mountPath: "/workspace" },
            ...o.volumes.map((v, i) => ({ name: `vol-${i}`, mountPath: v.mountPath })),
          ],
        },
      ],
      volumes: [
        // `claude` is ~400 MB; berth-init alone is under 2 MB.
        { name: "berth", emptyDir: { sizeLimit: o.copyClaude ? "512Mi" : "16Mi" } },
        { name: "state", emptyDir: { sizeLimit: "64Mi" } },
        { name: "home", emptyDir: {} },
        { name: "data", persistentVolumeClaim: { claimName: o.dataClaim } },
        ...o.volumes.map((v, i) => ({ name: `vol-${i}`, persistentVolumeClaim: { claimName: v.claim } })),
      ],
    },
  };
}

/** A claim of `sizeMiB` (the sandbox's /workspace, or a Berth volume). */
export function claim(o: {
  name: string;
  sizeMiB: number;
  labels: Record<string, string>;
  storageClass?: string;
  /** Volumes shared by sandboxes on several nodes need ReadWriteMany storage. */
  accessMode?: "ReadWriteOnce" | "ReadWriteMany";
}): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: o.name, labels: { [LABEL.managedBy]: MANAGED_BY, ...o.labels } },
    spec: {
      accessModes: [o.accessMode ?? "ReadWriteOnce"],
      resources: { requests: { storage: `${o.sizeMiB}Mi` } },
      ...(o.storageClass ? { storageClassName: o.storageClass } : {}),
    },
  };
}

/**
 * The sandbox's egress policy as a NetworkPolicy on its Pod: no ingress at all (the server
 * reaches it through the API server, not the pod network); egress `none` is nothing, `open` is
 * the internet but no private range, plus the cluster DNS; `allowlist` takes CIDRs only
 * plus, with the egress proxy, hostnames (the proxy checks them). With a `gateway`, every mode
 * also lets the Pod reach that one address on the gateway's port (which answers only session
 * tokens) and the proxy's (which applies the sandbox's policy), as the local driver lets every
 * sandbox reach those host ports.
 */
export function egressPolicy(id: string, policy: NetworkPolicy, gateway?: GatewayTarget): V1NetworkPolicy {
  const dns = {
    to: [
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
      },
    ],
    ports: [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ],
  };
  let egress: NonNullable<V1NetworkPolicy["spec"]>["egress"] = [];
  if (policy.egress === "open")
    egress = [{ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: PRIVATE_RANGES } }] }, dns];
  else if (policy.egress === "allowlist") {
    const { cidrs, hosts } = parseAllowlist(policy.allow);
    if (hosts.length > 0 && !gateway?.proxyPort)
      throw new NotSupportedError(
        `hostnames in allowlists need the egress proxy (BERTH_K8S_GATEWAY_ADDRESS and BERTH_K8S_EGRESS_PROXY_PORT); without it the kubernetes driver allows CIDRs only: ${hosts.join(", ")}`,
      );
    egress = cidrs.length > 0 ? [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })) }] : [];
  }
  if (gateway)
    egress.push({
      to: [{ ipBlock: { cidr: `${gateway.address}/32` } }],
      ports: [gateway.port, ...(gateway.proxyPort ? [gateway.proxyPort] : [])].map((port) => ({
        protocol: "TCP",
        port,
      })),
    });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: policyName(id),
      labels: {
        [LABEL.managedBy]: MANAGED_BY,
        [LABEL.sandbox]: id,
        ...(gateway ? { [LABEL.replica]: gateway.replica } : {}),
      },
      annotations: {
        [ANNOTATION.network]: JSON.stringify(policy),
        ...(gateway ? { [ANNOTATION.gateway]: gatewayKey(gateway) } : {}),
      },
    },
    spec: {
      podSelector: { matchLabels: { [LABEL.sandbox]: id } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [],
      egress,
    },
  };
}

/** How a policy names the gateway it allows (a changed address or port makes it stale). */
export const gatewayKey = (g: GatewayTarget): string =>
  `${g.address}:${g.port}${g.proxyPort ? `,${g.proxyPort}` : ""}`;
