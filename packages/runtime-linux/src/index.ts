import type { Runtime } from "@berth/core";
import { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";

export { CommandError } from "./command.js";
export { hostResolver } from "./host.js";
// The allowlist machinery, which the Docker driver applies to its bridge too.
export { type DnsClient, DnsResolver } from "./network/dns-resolver.js";
export { EgressProxy } from "./network/egress-proxy.js";
export {
  allowResolvedScript,
  type ProxyPorts,
  removeSandboxScript,
  type SandboxRules,
  sandboxScript,
  unmapScript,
} from "./network/nftables.js";
export { buildOciSpec, type OciSpecInput } from "./oci-spec.js";
export { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";
export { defaultSeccompProfile } from "./seccomp-profile.js";
export { raiseInotifyLimits } from "./uid-limits.js";
export { Volumes } from "./volumes.js";

/**
 * The local Linux runtime: sandboxes as OCI containers run by runc (or crun on pure cgroup v2
 * hosts), each with an overlay root over a loop-mounted ext4 disk, its own namespaces and cgroups.
 * berth-init comes from `initBinaryPath()` of @berth/supervisor unless `initBinary` says otherwise.
 * Call `start()` before use.
 */
export function createLinuxRuntime(o: LinuxRuntimeOptions): Runtime {
  return new LinuxRuntime(o);
}
