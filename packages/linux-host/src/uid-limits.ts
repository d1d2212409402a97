import { readFileSync, writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import type { Logger } from "@berth/core";

/**
 * The kernel counts inotify instances and watches per uid (fs.inotify.max_user_instances,
 * 128 on most hosts, and max_user_watches), and every sandbox runs as uid 1000: with those
 * defaults one sandbox holding them all takes inotify (and the file watch API) from every other
 * sandbox and from the host's own uid 1000. Both cost kernel memory that is charged to the
 * sandbox's memory cgroup (an instance with a watch measured ~1.5 KiB here), so the server
 * raises the two ceilings above what all of the host's memory could hold: then each sandbox is
 * bounded by its own memory, pids and open-files limits, never by a count it shares.
 */
const SYSCTLS = ["/proc/sys/fs/inotify/max_user_instances", "/proc/sys/fs/inotify/max_user_watches"];
/** Less than any instance or watch costs, so the ceiling is out of every sandbox's reach. */
const MIN_BYTES_EACH = 512;
const INT_MAX = 2 ** 31 - 1;

/** The ceiling for this host's memory: more objects than its RAM could hold. */
export function inotifyCeiling(memBytes = totalmem()): number {
  return Math.min(INT_MAX, Math.ceil(memBytes / MIN_BYTES_EACH));
}

/** Raises the per-uid inotify limits to the ceiling (never lowers one); says what it did. */
export function raiseInotifyLimits(log: Logger, ceiling = inotifyCeiling()): void {
  for (const path of SYSCTLS) {
    try {
      const now = Number(readFileSync(path, "utf8").trim());
      if (now >= ceiling) continue;
      writeFileSync(path, String(ceiling));
      log.info(
        { sysctl: path.slice("/proc/sys/".length), from: now, to: ceiling },
        "raised a per-uid limit that sandboxes share",
      );
    } catch (err) {
      log.warn(
        { sysctl: path, err: String(err) },
        "could not raise a per-uid inotify limit: one sandbox may exhaust it for the others (raise it on the host)",
      );
    }
  }
}
