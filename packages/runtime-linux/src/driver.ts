import { hiddenPathsOf, type RuntimeDriver } from "@berth/core";
import { LinuxRuntime } from "./runtime.js";

/** The local driver (BERTH_RUNTIME auto, runc or crun): OCI containers run by runc or crun. */
export const linuxDriver: RuntimeDriver = {
  name: "linux",
  create: (config, { dataDir, gatewayPort, log }) =>
    new LinuxRuntime({
      dataDir,
      ociRuntime: config.runtime as "auto" | "runc" | "crun",
      diskPoolSize: config.diskPoolSize,
      diskCopyOnWrite: config.diskCopyOnWrite,
      defaultDiskMiB: config.defaultDiskMiB,
      hiddenPaths: hiddenPathsOf(config),
      rootIdBase: config.rootIdBase,
      network: {
        enabled: config.sandboxNetworks,
        cidr: config.networkCidr,
        dnsUpstream: config.dnsUpstream,
        hostPorts: [gatewayPort],
      },
      log,
    }),
};
