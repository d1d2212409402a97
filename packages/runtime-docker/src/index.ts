import type { Runtime } from "@berth/core";
import { DockerRuntime, type DockerRuntimeOptions } from "./runtime.js";

export { buildDefaultRootfs } from "./default-image.js";
export { Engine, EngineError } from "./engine.js";
export { DockerRuntime, type DockerRuntimeOptions } from "./runtime.js";

/**
 * The Docker runtime: sandboxes as containers of a Docker Engine on this host (its socket dirs
 * and berth-init are bound from the host, so the engine must run on the same machine).
 * Call `start()` before use.
 */
export function createDockerRuntime(o: DockerRuntimeOptions): Runtime {
  return new DockerRuntime(o);
}
