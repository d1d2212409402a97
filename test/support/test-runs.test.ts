// The harness's own leftovers: the next run purges what an interrupted run left (paused sandboxes
// included), and never touches a run that is still going.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LinuxRuntime } from "@berth/runtime-linux";
import { describe, expect, it } from "vitest";
import { holdRange, rangesInUse } from "./ranges.js";
import { purgeDeadRuns, startTicks } from "./test-runs.js";

/** A run dir whose `owner` names `pid` (started at `start`). */
function runDir(root: string, pid: number, start: string | null): string {
  const dir = join(root, `${pid.toString(36)}-${Number(start).toString(36)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "owner"), JSON.stringify({ pid, start }));
  return dir;
}

/** Host pids in a cgroup dir, or none when it is gone. */
function pidsIn(dir: string): string[] {
  return existsSync(dir) ? readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean) : [];
}

describe.skipIf(process.getuid?.() !== 0)("test run dirs", () => {
  it("purges an interrupted run's data dirs (a paused sandbox, its cgroups and network) and leaves a live run's", async () => {
    const root = mkdtempSync("/tmp/berth-runs-test-");
    const range = holdRange("sandboxes");
    // A dead owner: a child that already exited. A live one: this process's parent.
    const dead = runDir(root, spawnSync("true").pid ?? 0, "0");
    const live = runDir(root, process.ppid, startTicks(process.ppid));
    const liveData = mkdtempSync(join(live, "berth-e2e-"));
    const dataDir = mkdtempSync(join(dead, "berth-e2e-"));
    const rt = new LinuxRuntime({
      dataDir,
      ociRuntime: "auto",
      diskPoolSize: 0,
      defaultDiskMiB: 64,
      network: { enabled: true, cidr: range.cidr, dnsUpstream: "127.0.0.1" },
    });
    const id = `runs-${Math.random().toString(36).slice(2, 8)}`;
    let cgroups: string[] = [];
    try {
      await rt.start();
      const info = (await rt.create({
        id,
        template: "default",
        resources: { cpus: 1, memoryMiB: 128, diskMiB: 64, pids: 64 },
        network: { egress: "none", allow: [] },
        env: {},
      })) as unknown as { cgroupPaths: Record<string, string> };
      cgroups = [...new Set(Object.values(info.cgroupPaths))];
      await rt.pause(id);
      // The run ends without cleaning up: the sandbox stays, frozen, with its network table.
      await rt.close();
      expect(cgroups.flatMap(pidsIn).length).toBeGreaterThan(0);
      expect(rangesInUse()).toContain(range.cidr);

      const purged = await purgeDeadRuns(root);

      expect(purged).toEqual([dataDir]);
      expect(existsSync(dead)).toBe(false);
      expect(cgroups.filter((c) => existsSync(c))).toEqual([]);
      expect(rangesInUse()).not.toContain(range.cidr);
      expect(existsSync(liveData)).toBe(true);
    } finally {
      // The fix under test failed: leave nothing behind all the same.
      if (existsSync(dataDir)) {
        const cleaner = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0 });
        await cleaner.start();
        await cleaner.destroy(id).catch(() => {});
        await cleaner.purgeHostState();
        await cleaner.close();
      }
      rmSync(root, { recursive: true, force: true });
      range.release();
    }
  });
});
