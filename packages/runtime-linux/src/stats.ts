import type { SandboxStats } from "@berth/core";
import { diskUsedBytes } from "@berth/linux-host";
import { type CgroupPaths, readCgroupStats } from "./cgroups.js";
import { netBytes } from "./host.js";

/** Resource use of a sandbox: its cgroups, its init's network namespace and its disk at `diskDir`. */
export function sandboxStats(
  info: { pid: number; cgroupPaths: CgroupPaths },
  version: 1 | 2,
  diskDir: string,
): SandboxStats {
  const cg = readCgroupStats(version, info.cgroupPaths);
  const net = netBytes(info.pid);
  return {
    cpuSeconds: cg.cpuSeconds,
    memoryBytes: cg.memoryBytes,
    memoryPeakBytes: cg.memoryPeakBytes,
    diskBytes: diskUsedBytes(diskDir),
    pids: cg.pids,
    netRxBytes: net.rx,
    netTxBytes: net.tx,
  };
}
