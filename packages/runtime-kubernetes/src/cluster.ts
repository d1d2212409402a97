/**
 * The few Kubernetes API calls the driver makes, in one namespace, through @kubernetes/client-node:
 * Pods, PersistentVolumeClaims and NetworkPolicies (create, read, list by label, replace, delete)
 * and the pods/portforward WebSocket. A 404 becomes null; every other refusal a SandboxError
 * that names the call (the API's own message goes to the log: it can name cluster internals).
 */
import type { Duplex } from "node:stream";
import { ConflictError, type Logger, SandboxError } from "@berth/core";
import {
  ApiException,
  CoreV1Api,
  createConfiguration,
  type KubeConfig,
  NetworkingV1Api,
  ServerConfiguration,
  type V1NetworkPolicy,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from "@kubernetes/client-node";
import { portForward } from "./port-forward.js";

/** No API call waits longer by default (a hung API server must not stall the reaper or a request). */
export const API_TIMEOUT_MS = 30_000;

export class Cluster {
  private readonly core: CoreV1Api;
  private readonly net: NetworkingV1Api;

  constructor(
    private readonly kc: KubeConfig,
    readonly namespace: string,
    private readonly log: Logger,
    private readonly timeoutMs = API_TIMEOUT_MS,
  ) {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new SandboxError("kubernetes: the kubeconfig names no cluster");
    // As kc.makeApiClient does, plus a deadline on every request (the client has none).
    const config = createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [
        {
          pre: async (ctx) => {
            ctx.setSignal(AbortSignal.timeout(timeoutMs));
            return ctx;
          },
          post: async (res) => res,
        },
      ],
    });
    this.core = new CoreV1Api(config);
    this.net = new NetworkingV1Api(config);
  }

  createPod(body: V1Pod): Promise<V1Pod> {
    return this.call("create pod", () => this.core.createNamespacedPod({ namespace: this.namespace, body }));
  }

  readPod(name: string): Promise<V1Pod | null> {
    return this.orNull("read pod", () => this.core.readNamespacedPod({ namespace: this.namespace, name }));
  }

  async listPods(labelSelector: string): Promise<V1Pod[]> {
    const l = await this.call("list pods", () =>
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }),
    );
    return l.items;
  }

  /** Replaces a pod (labels); with `metadata.resourceVersion` set, 409 ConflictError if it changed since. */
  replacePod(body: V1Pod): Promise<V1Pod> {
    const name = body.metadata?.name ?? "";
    return this.call("replace pod", () =>
      this.core.replaceNamespacedPod({ namespace: this.namespace, name, body }),
    );
  }

  async deletePod(name: string): Promise<void> {
    await this.orNull("delete pod", () =>
      this.core.deleteNamespacedPod({ namespace: this.namespace, name, gracePeriodSeconds: 0 }),
    );
  }

  createClaim(body: V1PersistentVolumeClaim): Promise<V1PersistentVolumeClaim> {
    return this.call("create persistentvolumeclaim", () =>
      this.core.createNamespacedPersistentVolumeClaim({ namespace: this.namespace, body }),
    );
  }

  readClaim(name: string): Promise<V1PersistentVolumeClaim | null> {
    return this.orNull("read persistentvolumeclaim", () =>
      this.core.readNamespacedPersistentVolumeClaim({ namespace: this.namespace, name }),
    );
  }

  async listClaims(labelSelector: string): Promise<V1PersistentVolumeClaim[]> {
    const l = await this.call("list persistentvolumeclaims", () =>
      this.core.listNamespacedPersistentVolumeClaim({ namespace: this.namespace, labelSelector }),
    );
    return l.items;
  }

  replaceClaim(body: V1PersistentVolumeClaim): Promise<V1PersistentVolumeClaim> {
    const name = body.metadata?.name ?? "";
    return this.call("replace persistentvolumeclaim", () =>
      this.core.replaceNamespacedPersistentVolumeClaim({ namespace: this.namespace, name, body }),
    );
  }

  async deleteClaim(name: string): Promise<void> {
    await this.orNull("delete persistentvolumeclaim", () =>
      this.core.deleteNamespacedPersistentVolumeClaim({ namespace: this.namespace, name }),
    );
  }

  /** Creates the policy, or replaces the one of that name. */
  async applyPolicy(body: V1NetworkPolicy): Promise<void> {
    const name = body.metadata?.name ?? "";
    const have = await this.orNull("read networkpolicy", () =>
      this.net.readNamespacedNetworkPolicy({ namespace: this.namespace, name }),
    );
    if (!have)
      await this.call("create networkpolicy", () =>
        this.net.createNamespacedNetworkPolicy({ namespace: this.namespace, body }),
      );
    else
      await this.call("replace networkpolicy", () =>
        this.net.replaceNamespacedNetworkPolicy({
          namespace: this.namespace,
          name,
          body: { ...body, metadata: { ...body.metadata, resourceVersion: have.metadata?.resourceVersion } },
        }),
      );
  }

  async listPolicies(labelSelector: string): Promise<V1NetworkPolicy[]> {
    const l = await this.call("list networkpolicies", () =>
      this.net.listNamespacedNetworkPolicy({ namespace: this.namespace, labelSelector }),
    );
    return l.items;
  }

  async deletePolicy(name: string): Promise<void> {
    await this.orNull("delete networkpolicy", () =>
      this.net.deleteNamespacedNetworkPolicy({ namespace: this.namespace, name }),
    );
  }

  /** A byte stream to `port` on the pod's loopback. */
  portForward(pod: string, port: number): Promise<Duplex> {
    return portForward(this.kc, this.namespace, pod, port, this.timeoutMs);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiException) {
        const code = err.code;
        if (code !== 404)
          this.log.warn(
            { call: what, status: code, body: String(err.body).slice(0, 500) },
            "kubernetes api error",
          );
        if (code === 409) throw new ConflictError(`kubernetes: ${what}: conflict`);
        throw Object.assign(new SandboxError(`kubernetes: ${what} refused (status ${code})`), {
          status: code,
        });
      }
      throw new SandboxError(`kubernetes API not reachable: ${what}: ${(err as Error).message}`);
    }
  }

  private async orNull<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await this.call(what, fn);
    } catch (err) {
      if ((err as { status?: number }).status === 404) return null;
      throw err;
    }
  }
}
