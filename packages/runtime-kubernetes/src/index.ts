import { ConfigError, type Logger, type Resources, type Runtime } from "@berth/core";
import { KubeConfig } from "@kubernetes/client-node";
import { KubernetesRuntime } from "./runtime.js";

export { LABEL, SUPERVISOR_PORT } from "./objects.js";
export { PORT_FORWARD_PROTOCOL } from "./port-forward.js";
export { KubernetesRuntime, type KubernetesRuntimeOptions } from "./runtime.js";

/** `default=debian:12-slim,py=python:3.12-slim` as a map; ConfigError naming what is wrong. */
export function parseImageMap(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const image = pair.slice(eq + 1).trim();
    if (eq < 1 || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) || !/^[^\s,=]+$/.test(image))
      throw new ConfigError(`BERTH_K8S_IMAGES: '${pair}' is not name=image`);
    out[name] = image;
  }
  if (!out.default) throw new ConfigError("BERTH_K8S_IMAGES must name an image for template 'default'");
  return out;
}

/**
 * The Kubernetes runtime: sandboxes as Pods in `namespace`, credentials from the cluster's
 * service account when in a Pod, else `KUBECONFIG` or ~/.kube/config. Call `start()` before use.
 */
export function createKubernetesRuntime(o: {
  namespace: string;
  images: string;
  initImage: string;
  runtimeClass?: string;
  storageClass?: string;
  warmPods: number;
  defaultResources: Resources;
  log?: Logger;
}): Runtime {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return new KubernetesRuntime({ ...o, kubeConfig, images: parseImageMap(o.images) });
}
