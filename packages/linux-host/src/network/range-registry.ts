import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { safeReaddir } from "../host.js";

/** Where Berth servers on this host note the sandbox ranges they hold (tmpfs: gone at reboot). */
export const REGISTRY_DIR = "/run/berth/networks";
/** A lock older than this belongs to a process that died while holding it. */
const STALE_LOCK_MS = 10_000;
const LOCK_WAIT_MS = 15_000;

/** One server's claim: its range, its process and its data dir. */
export interface RangeClaim {
  cidr: string;
  pid: number;
  /** The process's start time (/proc/<pid>/stat field 22), so a reused pid is not taken for it. */
  started: string;
  dataDir: string;
}

/**
 * The sandbox ranges of the Berth servers running on this host, one file per data dir. A server
 * with no sandbox yet shows nothing on the host's interfaces or routes, so this is how another
 * server starting beside it learns the range is taken. Entries of processes that have ended are
 * dropped when read.
 */
export class RangeRegistry {
  constructor(private readonly dir = REGISTRY_DIR) {}

  /** Live claims of other data dirs than `dataDir`. */
  others(dataDir: string): RangeClaim[] {
    const out: RangeClaim[] = [];
    for (const name of safeReaddir(this.dir)) {
      if (!name.endsWith(".json")) continue;
      const path = join(this.dir, name);
      let c: RangeClaim;
      try {
        c = JSON.parse(readFileSync(path, "utf8")) as RangeClaim;
      } catch {
        continue;
      }
      if (!alive(c)) rmSync(path, { force: true });
      else if (c.dataDir !== dataDir) out.push(c);
    }
    return out;
  }

  /** Records that this process holds `cidr` for `dataDir` (replacing its earlier claim). */
  claim(cidr: string, dataDir: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const claim: RangeClaim = { cidr, pid: process.pid, started: startTime(process.pid) ?? "", dataDir };
    const path = this.pathOf(dataDir);
    writeFileSync(`${path}.tmp`, JSON.stringify(claim), { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  }

  /** Drops this data dir's claim, if this process made it. */
  release(dataDir: string): void {
    try {
      const c = JSON.parse(readFileSync(this.pathOf(dataDir), "utf8")) as RangeClaim;
      if (c.pid === process.pid) rmSync(this.pathOf(dataDir), { force: true });
    } catch {
      // nothing claimed
    }
  }

  /**
   * Runs `fn` while holding the registry's lock (a directory: mkdir is atomic), so two servers
   * starting at once cannot both pick the same free range. A lock left by a dead process is broken.
   */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const lock = join(this.dir, ".lock");
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const age = Date.now() - (mtimeOf(lock) ?? Date.now());
        if (age > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
        else if (Date.now() > deadline) throw new Error(`${lock} has been held for ${age} ms`);
        else await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      return await fn();
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }

  private pathOf(dataDir: string): string {
    return join(this.dir, `${createHash("sha256").update(dataDir).digest("hex").slice(0, 16)}.json`);
  }
}

/** A process's start time in clock ticks since boot; undefined when it does not exist. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function alive(c: RangeClaim): boolean {
  return Number.isInteger(c.pid) && c.pid > 0 && startTime(c.pid) === c.started;
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}
