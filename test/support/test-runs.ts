/**
 * Each `vitest run` keeps its test servers' data dirs in a run dir of its own,
 * /tmp/berth-runs/<pid>-<start time> (base 36: socket paths in data dirs must stay short), whose `owner` file names the vitest process (pid and start time).
 * A run that was interrupted (Ctrl-C, a killed CI job) leaves sandboxes there, paused ones
 * included, with their mounts, loop devices, network namespaces and nftables tables; the next
 * run's global setup purges the runs whose owner is gone. Other runs on this host (other
 * checkouts, a developer's server) are never touched: their owner is alive, or their files are
 * elsewhere.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { purgeDataDir } from "./purge.js";

/** Where every run dir lives. */
export const RUNS_ROOT = "/tmp/berth-runs";
/** The variable that hands this run's dir to the test files (set by the global setup). */
const RUN_DIR_ENV = "BERTH_TEST_RUN_DIR";

/** A process's start time in clock ticks since boot (with the pid, it names one process). */
export function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** A fresh data dir for a test server: in this run's dir, so an interrupted run's is found and purged. */
export function testDataDir(prefix: string): string {
  const run = process.env[RUN_DIR_ENV];
  // In a run dir the name says Berth already; unix socket paths under a data dir have a limit
  // (the Docker driver's need the data dir under 40 characters).
  if (run && existsSync(run)) return mkdtempSync(join(run, prefix.replace(/^berth-/, "")));
  return mkdtempSync(join("/tmp", prefix));
}

/** Makes this run's dir, owned by this process, and hands it to the test files through the env. */
export function beginRun(root = RUNS_ROOT): string {
  const start = startTicks(process.pid);
  // Named by pid and start time: never the name of an earlier run, dead or alive.
  const dir = join(root, `${process.pid.toString(36)}-${Number(start).toString(36)}`);
  // Made under another name and renamed into place with its owner in it, so another run's purge
  // never sees it without one (and takes it for a dead run's).
  const making = `${dir}.new`;
  rmSync(making, { recursive: true, force: true });
  // Searchable by others (0711, not listable): a root sandbox's mounts are set up by an
  // unprivileged host id that must pass through every directory above its data dir.
  mkdirSync(root, { recursive: true, mode: 0o711 });
  chmodSync(root, 0o711);
  mkdirSync(making, { mode: 0o711 });
  writeFileSync(join(making, "owner"), JSON.stringify({ pid: process.pid, start }));
  renameSync(making, dir);
  process.env[RUN_DIR_ENV] = dir;
  return dir;
}

/** Whether a run dir's owner is still running (same pid and start time). */
function ownerAlive(dir: string): boolean {
  try {
    const owner = JSON.parse(readFileSync(join(dir, "owner"), "utf8")) as { pid: number; start: string };
    return startTicks(owner.pid) === owner.start;
  } catch {
    return false; // no owner file: a run that died while it was being made
  }
}

/**
 * Takes a dead run's dir for this process to purge (two runs starting at once must not purge
 * the same sandboxes side by side): the dir's `owner` becomes this process, atomically.
 */
function claim(dir: string): boolean {
  const mine = join(dir, `owner.${process.pid}`);
  try {
    writeFileSync(mine, JSON.stringify({ pid: process.pid, start: startTicks(process.pid) }));
    renameSync(mine, join(dir, "owner"));
  } catch {
    return false;
  }
  // Another run renamed its claim over ours at the same moment: the last rename wins.
  return JSON.parse(readFileSync(join(dir, "owner"), "utf8")).pid === process.pid;
}

/** Removes every data dir in a run dir (sandboxes thawed and killed first, see purgeDataDir), then the dir. */
export async function purgeRun(dir: string): Promise<string[]> {
  const purged: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith("owner")) continue;
    await purgeDataDir(join(dir, name)).catch((err) => console.warn(`could not purge ${name}: ${err}`));
    purged.push(name);
  }
  rmSync(dir, { recursive: true, force: true });
  return purged;
}

/** Purges the run dirs of runs that ended without cleaning up; answers what it purged. */
export async function purgeDeadRuns(root = RUNS_ROOT): Promise<string[]> {
  if (!existsSync(root)) return [];
  const purged: string[] = [];
  // Run dirs are `<pid>-<start>`; `<pid>-<start>.new` is one being made.
  for (const name of readdirSync(root).filter((n) => /^[0-9a-z]+-[0-9a-z]+$/.test(n))) {
    const dir = join(root, name);
    if (ownerAlive(dir) || !claim(dir)) continue;
    purged.push(...(await purgeRun(dir)).map((d) => join(dir, d)));
  }
  return purged;
}
