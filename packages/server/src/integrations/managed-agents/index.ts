import type { Config } from "@berth/core";
import { type ManagedAgentsDeps, ManagedAgentsService } from "./registry.js";
import { SecretBox } from "./secret-box.js";
import { installWorker } from "./worker-install.js";

export { ManagedAgentsService } from "./registry.js";
export { managedAgentRoutes } from "./routes.js";

/**
 * Claude Managed Agents integrations, when the worker can run in this server's sandboxes: the
 * local runtime, which binds the host's /usr (where the worker's Node.js and SDK are installed).
 * Answers undefined, with a warning, when not.
 */
export function managedAgentsService(
  config: Config,
  d: Omit<ManagedAgentsDeps, "worker" | "box">,
): ManagedAgentsService | undefined {
  if (config.runtime === "docker" || config.runtime === "kubernetes") {
    d.log.info(
      { runtime: config.runtime },
      "managed agents integrations need the local runtime; they are off",
    );
    return undefined;
  }
  try {
    const worker = installWorker(config.agentDir);
    const box = SecretBox.open({ secretKey: config.secretKey, dataDir: config.dataDir });
    return new ManagedAgentsService({ ...d, worker, box });
  } catch (err) {
    d.log.warn(
      { err: String(err) },
      "managed agents integrations are off: the worker could not be installed",
    );
    return undefined;
  }
}
