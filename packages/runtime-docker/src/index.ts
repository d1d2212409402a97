export { buildDefaultRootfs } from "./default-image.js";
export { dockerDriver } from "./driver.js";
export { Engine, EngineError } from "./engine.js";
export { DockerRuntime, type DockerRuntimeOptions } from "./runtime.js";
