import { readFileSync } from "node:fs";
import { SandboxError } from "@berth/core";
import { installed } from "@berth/linux-host";

/** Which OCI runtime binary to drive. */
export type OciRuntimeChoice = "auto" | "runc" | "crun";

/**
 * `auto` takes crun only on a pure cgroup v2 host (crun refuses hybrid v1 setups: "cgroups in
 * hybrid mode not supported") and only when it is installed; runc everywhere else.
 */
export function pickOciRuntime(choice: OciRuntimeChoice, cgroupVersion: 1 | 2): "runc" | "crun" {
  if (choice === "crun" && cgroupVersion !== 2)
    throw new SandboxError("crun needs a pure cgroup v2 host; use BERTH_RUNTIME=runc or auto");
  const picked = choice !== "auto" ? choice : cgroupVersion === 2 && installed("crun") ? "crun" : "runc";
  // Found at start, not at the first create: a missing binary is a setup problem.
  if (!installed(picked))
    throw new SandboxError(
      `${picked} is not installed: run \`npm start\` as root (it installs it) or \`apt-get install ${picked}\``,
    );
  return picked;
}

/** The sandbox init's host pid from runc's pid file. */
export function readInitPid(pidFile: string): number {
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new SandboxError("the sandbox did not start");
  return pid;
}

/** Bytes through every interface but loopback in the network namespace of `pid`. */
export function netBytes(pid: number): { rx: number; tx: number } {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/dev`, "utf8");
  } catch {
    return { rx: 0, tx: 0 };
  }
  let rx = 0;
  let tx = 0;
  // "  eth0: rxBytes rxPackets ... (8 rx fields) txBytes ..."
  for (const line of text.split("\n").slice(2)) {
    const [name, rest] = line.split(":");
    if (!rest || name?.trim() === "lo") continue;
    const f = rest.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

/** The server's own hard RLIMIT_NOFILE (a sandbox cannot be given more without CAP_SYS_RESOURCE). */
export function hardNofileLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const hard = line?.trim().split(/\s+/)[4];
    if (hard === "unlimited") return Number.POSITIVE_INFINITY;
    const n = Number(hard);
    return Number.isFinite(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}

/**
 * True when `pid` is a live (not zombie) process in the sandbox's cgroup: the cgroup check makes
 * a recycled pid of some other process count as dead.
 */
export function initIsAlive(pid: number, sandboxId: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`/${sandboxId}`);
  } catch {
    return false;
  }
}

/** True when the sandbox's freezer says it is frozen (v1 freezer.state, v2 cgroup.freeze). */
export function isFrozen(cgroupPaths: Record<string, string>): boolean {
  try {
    if (cgroupPaths.freezer)
      return readFileSync(`${cgroupPaths.freezer}/freezer.state`, "utf8").trim() !== "THAWED";
    if (cgroupPaths[""]) return readFileSync(`${cgroupPaths[""]}/cgroup.freeze`, "utf8").trim() === "1";
  } catch {
    // No freezer file: not frozen by us.
  }
  return false;
}
