import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { LinuxRuntime } from "@berth/runtime-linux";

/**
 * Removes everything a test server made under `dataDir`: its sandboxes (through a runtime of
 * its own), its network table, volumes and mounts, then the directory. `cidr` unset: the range
 * the server picked (remembered in its data dir).
 */
export async function purgeDataDir(dataDir: string, cidr?: string): Promise<void> {
  const cleaner = new LinuxRuntime({
    dataDir,
    ociRuntime: "auto",
    diskPoolSize: 0,
    network: { enabled: true, cidr, dnsUpstream: "127.0.0.1" },
  });
  await cleaner.start();
  for (const id of await cleaner.list()) await cleaner.destroy(id).catch(() => {});
  await cleaner.purgeHostState();
  await cleaner.close();
  execFileSync("sh", [
    "-c",
    `grep -q ' ${dataDir}/' /proc/self/mountinfo && umount -R -l ${dataDir}/* 2>/dev/null; true`,
  ]);
  rmSync(dataDir, { recursive: true, force: true });
}
