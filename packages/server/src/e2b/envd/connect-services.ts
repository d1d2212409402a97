import type { ConnectRouter } from "@connectrpc/connect";
import { filesystemService } from "./filesystem-service.js";
import { Filesystem } from "./gen/filesystem_pb.js";
import { Process } from "./gen/process_pb.js";
import { type ProcessEnv, processService, type SandboxRunning } from "./process-service.js";
import type { ProcessTable } from "./process-table.js";

/** envd's Connect services, ready to mount, and what closes the filesystem watches they keep. */
export interface EnvdServices {
  routes(router: ConnectRouter): void;
  closeAll(): void;
}

/**
 * Builds envd's `process.Process` and `filesystem.Filesystem` services. Imported only on the first
 * data-plane call (see installE2b): with protobuf's generated code and Connect's Node adapter this
 * module is most of the E2B surface's start-up cost, which every server restart would pay.
 */
export function envdServices(
  table: ProcessTable,
  processEnv: ProcessEnv,
  running: SandboxRunning,
): EnvdServices {
  const files = filesystemService();
  return {
    routes(router) {
      router.service(Process, processService(table, processEnv, running));
      router.service(Filesystem, files);
    },
    closeAll: () => files.closeAll(),
  };
}
