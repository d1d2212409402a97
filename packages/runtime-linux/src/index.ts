export { CommandError } from "@berth/linux-host";
export { linuxDriver } from "./driver.js";
export { buildOciSpec, type OciSpecInput } from "./oci-spec.js";
export { LinuxRuntime, type LinuxRuntimeOptions } from "./runtime.js";
export { defaultSeccompProfile } from "./seccomp-profile.js";
