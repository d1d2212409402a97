export { kubernetesDriver } from "./driver.js";
export { createKubernetesRuntime, parseImageMap } from "./factory.js";
export { LABEL, SUPERVISOR_PORT } from "./objects.js";
export { PORT_FORWARD_PROTOCOL } from "./port-forward.js";
export { KubernetesRuntime, type KubernetesRuntimeOptions } from "./runtime.js";
