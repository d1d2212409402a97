import { renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@berth/core";
import { DISK_UPPER, run } from "@berth/linux-host";

/**
 * A sandbox's writable layer (the overlay's upper dir on its disk) as a zstd-compressed tar.
 * Whiteouts (deleted template files) are char devices in the upper dir and travel as such.
 * Written under a temp name and renamed: a snapshot file is always whole.
 */
export async function captureLayer(disk: string, dest: string, o: { log?: Logger }): Promise<number> {
  const tmp = `${dest}.tmp`;
  try {
    await run(
      "tar",
      [
        "--zstd",
        "-c",
        "-f",
        tmp,
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
        "-C",
        join(disk, DISK_UPPER),
        ".",
      ],
      { ...o, timeoutMs: 30 * 60_000 },
    );
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return statSync(dest).size;
}

/** Unpacks a captured layer into a disk's upper dir (before its overlay is mounted). */
export async function restoreLayer(archive: string, disk: string, o: { log?: Logger }): Promise<void> {
  await run(
    "tar",
    [
      "--zstd",
      "-x",
      "-f",
      archive,
      "--numeric-owner",
      "--xattrs",
      "--xattrs-include=*",
      "--acls",
      "-C",
      join(disk, DISK_UPPER),
    ],
    { ...o, timeoutMs: 30 * 60_000 },
  );
}
