/**
 * The host pieces the local drivers (runc and Docker) share: the command runner, host probes,
 * the default root filesystem, disks and volumes, and sandbox networking (network namespaces,
 * nftables, Berth's DNS resolver and egress proxy). No driver logic lives here.
 */
export {
  CommandError,
  type CommandOptions,
  type CommandResult,
  commandOutput,
  run,
  runStreaming,
  type StreamingCommand,
  tryRun,
} from "./command.js";
export {
  DISK_STATE,
  DISK_UPPER,
  diskUsedBytes,
  ensureDiskSkeleton,
  mountDisk,
  mountOverlay,
  mountPoints,
  unmount,
} from "./disk.js";
export { prepareSlot, RootfsPool, releaseSlot } from "./disk-pool.js";
export { hostResolver, hostResolvers, installed, onPath, safeReaddir } from "./host.js";
export { type DnsClient, DnsResolver } from "./network/dns-resolver.js";
export { EgressProxy } from "./network/egress-proxy.js";
export {
  allowResolvedScript,
  applyNft,
  type ProxyPorts,
  removeSandboxScript,
  type SandboxRules,
  sandboxScript,
  unmapScript,
} from "./network/nftables.js";
export { RangeRegistry, REGISTRY_DIR } from "./network/range-registry.js";
export { type SandboxNet, SandboxNetworks, vethPrefixOf } from "./network/sandbox-networks.js";
export { claimSandboxRange } from "./network/sandbox-range.js";
export { ensureDefaultTemplate, initEnv, SANDBOX_GID, SANDBOX_UID, writeRootfsSkeleton } from "./rootfs.js";
export { canConnect, connectSupervisor } from "./supervisor-socket.js";
export { raiseInotifyLimits } from "./uid-limits.js";
export { Volumes } from "./volumes.js";
