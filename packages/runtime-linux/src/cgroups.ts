import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Logger } from "@berth/core";

const CGROUP_ROOT = "/sys/fs/cgroup";

/** How this host's cgroups are set up, found once at start. */
export interface CgroupSetup {
  /** 1: v1 or hybrid (controllers on v1 hierarchies); 2: unified only. */
  version: 1 | 2;
  /** Whether a sandbox can get its own cgroup namespace. */
  namespace: boolean;
  /** The server's own cgroup (v2; on v1 runc resolves its caller's own cgroup per controller). */
  own: string;
}

/** Controller name -> absolute cgroup dir of one sandbox (from runc's state; v2 uses the key ""). */
export type CgroupPaths = Record<string, string>;

/** Finds the cgroup version and the server's own cgroup. */
export function detectCgroups(): CgroupSetup {
  const version = existsSync(join(CGROUP_ROOT, "cgroup.controllers")) ? 2 : 1;
  const line = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((l) => l.startsWith("0::"));
  let own = line ? line.slice(3) || "/" : "/";
  // Already moved to our leaf by an earlier start in this process tree: the parent is ours.
  if (version === 2 && basename(own) === "server" && existsSync(join(CGROUP_ROOT, dirname(own), "berth")))
    own = dirname(own);
  return { version, namespace: existsSync("/proc/self/ns/cgroup"), own };
}

/**
 * The `cgroupsPath` to give runc for a sandbox, always under the server's own cgroup.
 * v1: a relative path, which runc places under its caller's own cgroup in every hierarchy.
 * v2: an absolute path under our own cgroup (prepared by `prepareCgroupParent`).
 */
export function sandboxCgroupsPath(setup: CgroupSetup, id: string): string {
  if (setup.version === 1) return `berth/${id}`;
  return join(setup.own, "berth", id);
}

/**
 * v2 only: a cgroup with processes cannot delegate controllers to children ("no internal
 * processes"), so when the server's own cgroup holds processes they move to a leaf `server`
 * child, then cpu/memory/pids are enabled for the subtree. No-op on v1 or in the real root
 * cgroup (exempt from that rule). In a container with its own cgroup namespace `own` reads "/"
 * but is not the real root (it has a `cgroup.type`, which the root lacks), so it is prepared too.
 */
export function prepareCgroupParent(setup: CgroupSetup, log?: Logger): void {
  const own = join(CGROUP_ROOT, setup.own);
  if (setup.version !== 2 || !existsSync(join(own, "cgroup.type"))) return;
  const procs = readLines(join(own, "cgroup.procs"));
  if (procs.length > 0) {
    const leaf = join(own, "server");
    mkdirSync(leaf, { recursive: true });
    for (const pid of procs) {
      try {
        writeFileSync(join(leaf, "cgroup.procs"), pid);
      } catch (err) {
        // A process can exit between the read and the move.
        log?.debug({ pid, err: String(err) }, "could not move process to leaf cgroup");
      }
    }
  }
  const available = readFileSync(join(own, "cgroup.controllers"), "utf8").trim().split(/\s+/);
  const wanted = ["cpu", "memory", "pids"].filter((c) => available.includes(c));
  if (wanted.length) writeFileSync(join(own, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
  const berth = join(own, "berth");
  mkdirSync(berth, { recursive: true });
  writeFileSync(join(berth, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
}

/** The sandbox's cgroup dirs as runc recorded them in `<runc-root>/<id>/state.json`. */
export function readCgroupPaths(runcRoot: string, id: string): CgroupPaths {
  try {
    const state = JSON.parse(readFileSync(join(runcRoot, id, "state.json"), "utf8")) as {
      cgroup_paths?: Record<string, string>;
    };
    return state.cgroup_paths ?? {};
  } catch {
    return {};
  }
}

/** Kernel counters of one sandbox's cgroups. */
export interface CgroupStats {
  cpuSeconds: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
  oomKills: number;
}

/** Reads cpu, memory, pids and OOM counters (v1 and v2); missing files read as 0. */
export function readCgroupStats(version: 1 | 2, paths: CgroupPaths): CgroupStats {
  if (version === 2) {
    const dir = paths[""] ?? Object.values(paths)[0] ?? "";
    const memoryBytes = readNumber(join(dir, "memory.current"));
    return {
      cpuSeconds: readKey(join(dir, "cpu.stat"), "usage_usec") / 1e6,
      memoryBytes,
      memoryPeakBytes: existsSync(join(dir, "memory.peak"))
        ? readNumber(join(dir, "memory.peak"))
        : memoryBytes,
      pids: readNumber(join(dir, "pids.current")),
      oomKills: readKey(join(dir, "memory.events"), "oom_kill"),
    };
  }
  const mem = paths.memory ?? "";
  return {
    cpuSeconds: readNumber(join(paths.cpuacct ?? paths.cpu ?? "", "cpuacct.usage")) / 1e9,
    memoryBytes: readNumber(join(mem, "memory.usage_in_bytes")),
    memoryPeakBytes: readNumber(join(mem, "memory.max_usage_in_bytes")),
    pids: readNumber(join(paths.pids ?? "", "pids.current")),
    oomKills: readKey(join(mem, "memory.oom_control"), "oom_kill"),
  };
}

/** Removes a sandbox's cgroup dirs that are left (empty cgroups only: rmdir, never rm -r). */
export function removeCgroups(paths: CgroupPaths, log?: Logger): void {
  for (const dir of new Set(Object.values(paths))) {
    if (!dir.startsWith(`${CGROUP_ROOT}/`) || !existsSync(dir)) continue;
    try {
      rmdirSync(dir);
    } catch (err) {
      log?.warn({ err: String(err) }, "could not remove a sandbox cgroup");
    }
  }
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

function readNumber(file: string): number {
  const n = Number(readLines(file)[0] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** A `key value` line from flat-keyed files such as cpu.stat and memory.events. */
function readKey(file: string, key: string): number {
  for (const l of readLines(file)) {
    const [k, v] = l.split(/\s+/);
    if (k === key) return Number(v) || 0;
  }
  return 0;
}
