import type { RuntimeDriver } from "@berth/core";
import { createKubernetesRuntime } from "./factory.js";

/** The Kubernetes driver (BERTH_RUNTIME=kubernetes): a Pod per sandbox in a cluster. */
export const kubernetesDriver: RuntimeDriver = {
  name: "kubernetes",
  create: (config, { gatewayPort, replica, log }) =>
    createKubernetesRuntime({
      namespace: config.k8sNamespace,
      images: config.k8sImages,
      initImage: config.k8sInitImage,
      runtimeClass: config.k8sRuntimeClass,
      storageClass: config.k8sStorageClass,
      warmPods: config.k8sWarmPods,
      gatewayAddress: config.k8sGatewayAddress,
      gatewayPort,
      egressProxyPort: config.k8sEgressProxyPort,
      dnsUpstream: config.dnsUpstream,
      replica,
      podCidrs: config.k8sPodCidrs,
      claudePath: config.k8sClaudePath,
      defaultResources: {
        cpus: config.defaultCpus,
        memoryMiB: config.defaultMemoryMiB,
        diskMiB: config.defaultDiskMiB,
        pids: config.defaultPids,
      },
      log,
    }),
};
