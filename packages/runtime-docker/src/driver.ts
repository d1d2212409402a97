import type { RuntimeDriver } from "@berth/core";
import { DockerRuntime } from "./runtime.js";

/** The Docker driver (BERTH_RUNTIME=docker): containers of a Docker Engine on this host. */
export const dockerDriver: RuntimeDriver = {
  name: "docker",
  create: (config, { dataDir, gatewayPort, log }) =>
    new DockerRuntime({
      dataDir,
      socketPath: config.dockerSocket,
      hostPorts: [gatewayPort],
      dnsUpstream: config.dnsUpstream,
      log,
    }),
};
