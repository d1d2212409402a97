export { LABEL, SUPERVISOR_PORT } from "./objects.js";
export { PORT_FORWARD_PROTOCOL } from "./port-forward.js";
export { KubernetesRuntime, type KubernetesRuntimeOptions } from "./runtime.js";
