import { readFileSync, writeFileSync } from "node:fs";
import { type Logger, SandboxError } from "@berth/core";
import { mountDisk, mountPoints, unmount } from "@berth/linux-host";
import { isFrozen } from "./host.js";

/** How long a freeze may take before it is called failed (a process stuck in the kernel). */
const FREEZE_TIMEOUT_MS = 5_000;

/**
 * Freezes or thaws a sandbox through its cgroup freezer directly (v1 `freezer.state`, v2
 * `cgroup.freeze`): the same files `runc pause/resume` write, without a runc process per call
 * (resume in well under a millisecond instead of ~8 ms). runc reads the freezer to report
 * `paused`, so its view stays consistent.
 */
export async function setFrozen(cgroupPaths: Record<string, string>, frozen: boolean): Promise<void> {
  const v1 = cgroupPaths.freezer;
  const v2 = cgroupPaths[""];
  if (!v1 && !v2) throw new SandboxError("the sandbox has no freezer cgroup");
  const file = v1 ? `${v1}/freezer.state` : `${v2}/cgroup.freeze`;
  writeFileSync(file, v1 ? (frozen ? "FROZEN" : "THAWED") : frozen ? "1" : "0");
  if (!frozen) return;
  // Freezing is asynchronous: done when the kernel says so (v1 FREEZING -> FROZEN, v2 frozen 1).
  const done = () =>
    v1
      ? readFileSync(file, "utf8").trim() === "FROZEN"
      : /^frozen 1$/m.test(readFileSync(`${v2}/cgroup.events`, "utf8"));
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  while (!done()) {
    if (Date.now() > deadline) {
      writeFileSync(file, v1 ? "THAWED" : "0");
      throw new SandboxError("the sandbox could not be frozen in time (a process is stuck in the kernel)");
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Runs `read` on a sandbox's disk while nothing writes to it: a running sandbox is frozen for
 * the while (unless it already is), a hibernated one has its disk mounted for it. Used for
 * snapshots and templates made of a sandbox, which must see one consistent layer.
 */
export async function withStillDisk<T>(
  disk: { image: string; mountPoint: string },
  o: { cgroupPaths: Record<string, string>; running: boolean; log: Logger },
  read: () => Promise<T>,
): Promise<T> {
  const mounted = (await mountPoints()).has(disk.mountPoint);
  const freeze = o.running && !isFrozen(o.cgroupPaths);
  if (!mounted) await mountDisk(disk.image, disk.mountPoint, { log: o.log });
  if (freeze) await setFrozen(o.cgroupPaths, true);
  try {
    return await read();
  } finally {
    if (freeze) await setFrozen(o.cgroupPaths, false);
    if (!mounted) await unmount(disk.mountPoint, await mountPoints(), o.log);
  }
}

/** How long processes SIGKILLed by `killLeftovers` may take to leave their cgroup. */
const KILL_WAIT_MS = 5_000;

/** Host pids in a sandbox's cgroups (every v1 hierarchy, or the v2 dir). */
function cgroupPids(cgroupPaths: Record<string, string>): number[] {
  const pids = new Set<number>();
  for (const dir of new Set(Object.values(cgroupPaths))) {
    try {
      for (const l of readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n")) if (l) pids.add(Number(l));
    } catch {
      // The cgroup is gone: nothing left in it.
    }
  }
  return [...pids];
}

/**
 * Kills every process still in a sandbox's cgroups: what `runc kill` missed, or all of them when
 * runc no longer knows the container (its state went with an interrupted test run's or a crashed
 * server's files). A frozen cgroup is thawed first: a frozen process takes SIGKILL only when it
 * runs again, so killing without the thaw leaves it, and its cgroup, forever. Waits until the
 * cgroups are empty (so they can be removed) or logs what is still there.
 */
export async function killLeftovers(cgroupPaths: Record<string, string>, log: Logger): Promise<void> {
  let pids = cgroupPids(cgroupPaths);
  if (pids.length === 0) return;
  if (isFrozen(cgroupPaths)) await setFrozen(cgroupPaths, false).catch(() => {});
  const deadline = Date.now() + KILL_WAIT_MS;
  while (pids.length > 0 && Date.now() < deadline) {
    for (const pid of pids)
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    await new Promise((r) => setTimeout(r, 10));
    pids = cgroupPids(cgroupPaths);
  }
  if (pids.length > 0) log.error({ pids }, "sandbox processes survived SIGKILL; their cgroups stay");
}
