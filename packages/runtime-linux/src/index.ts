/** The local Linux driver: sandboxes as OCI containers run by runc (or crun on pure cgroup v2 hosts). */
export { linuxDriver } from "./driver.js";
export { buildOciSpec, type OciSpecInput } from "./oci-spec.js";
export { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";
export { defaultSeccompProfile } from "./seccomp-profile.js";
