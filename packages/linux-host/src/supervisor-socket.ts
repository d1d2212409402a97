import net from "node:net";
import type { Duplex } from "node:stream";
import { NotFoundError, SandboxError } from "@berth/core";

/**
 * Opens a stream to a sandbox's supervisor at the unix socket `path` (both local drivers bind
 * it to a host dir): NotFoundError when there is no socket, SandboxError when nothing answers.
 */
export function connectSupervisor(path: string, sandboxId: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") reject(new NotFoundError("sandbox", sandboxId));
      else reject(new SandboxError("the sandbox's supervisor is not reachable"));
    });
  });
}

/** Whether something accepts connections at the unix socket `path` now. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
