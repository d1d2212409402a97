import type { Runtime } from "@berth/core";
import { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";

export { CommandError } from "./command.js";
export { buildOciSpec, type OciSpecInput } from "./oci-spec.js";
export { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";
export { defaultSeccompProfile } from "./seccomp-profile.js";
export { raiseInotifyLimits } from "./uid-limits.js";

/**
 * The local Linux runtime: sandboxes as OCI containers run by runc (or crun on pure cgroup v2
 * hosts), each with an overlay root over a loop-mounted ext4 disk, its own namespaces and cgroups.
 * berth-init comes from `initBinaryPath()` of @berth/supervisor unless `initBinary` says otherwise.
 * Call `start()` before use.
 */
export function createLinuxRuntime(o: LinuxRuntimeOptions): Runtime {
  return new LinuxRuntime(o);
}
