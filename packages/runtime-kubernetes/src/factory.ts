import { isIPv4 } from "node:net";
import { ConfigError, type Logger, type Resources, type Runtime } from "@berth/core";
import { KubeConfig } from "@kubernetes/client-node";
import { KubernetesRuntime } from "./runtime.js";

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
  /** BERTH_K8S_GATEWAY_ADDRESS: where Pods reach this server's model gateway (unset: no sessions). */
  gatewayAddress?: string;
  gatewayPort: number;
  /** BERTH_K8S_EGRESS_PROXY_PORT (0: no proxy). */
  egressProxyPort: number;
  dnsUpstream?: string;
  replica: string;
  /** BERTH_K8S_POD_CIDRS, comma-separated. */
  podCidrs: string;
  claudePath: string;
  log?: Logger;
}): Runtime {
  const { gatewayAddress, gatewayPort, egressProxyPort, replica, podCidrs, images, ...rest } = o;
  if (gatewayAddress !== undefined && !isIPv4(gatewayAddress))
    throw new ConfigError(`BERTH_K8S_GATEWAY_ADDRESS must be an IPv4 address, got '${gatewayAddress}'`);
  const cidrs = podCidrs
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  for (const c of cidrs) {
    const [ip, bits] = c.split("/");
    if (!isIPv4(ip ?? "") || !/^\d{1,2}$/.test(bits ?? "") || Number(bits) > 32)
      throw new ConfigError(`BERTH_K8S_POD_CIDRS: '${c}' is not an IPv4 CIDR`);
  }
  if (!o.claudePath.startsWith("/")) throw new ConfigError("BERTH_K8S_CLAUDE_PATH must be an absolute path");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return new KubernetesRuntime({
    ...rest,
    kubeConfig,
    images: parseImageMap(images),
    podCidrs: cidrs,
    ...(gatewayAddress
      ? {
          gateway: {
            address: gatewayAddress,
            port: gatewayPort,
            replica,
            ...(egressProxyPort > 0 ? { proxyPort: egressProxyPort } : {}),
          },
        }
      : {}),
  });
}
