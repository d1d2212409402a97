import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxError } from "@berth/core";
import { runStreaming, writeRootfsSkeleton } from "@berth/linux-host";
import { drainProgress, type Engine } from "./engine.js";

/**
 * Builds the `default` template's root filesystem in a temp dir: the local driver's skeleton
 * (Docker writes the container's resolv.conf itself), with berth-init's state and socket dirs
 * owned by the sandbox user. Returns the dir; the caller removes it.
 */
export function buildDefaultRootfs(hostEtc = "/etc"): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-docker-rootfs-"));
  writeRootfsSkeleton(dir, {
    hostEtc,
    omitEtc: ["resolv.conf"],
    userDirs: ["home/user", "workspace", "run/berth", "run/berth-sock"],
  });
  return dir;
}

/** `docker import` of a directory (tar streamed from `tar`) as image `ref`, with `changes` (LABEL ...). */
export async function importDirectory(
  engine: Engine,
  dir: string,
  ref: string,
  changes: string[],
): Promise<void> {
  const tar = runStreaming("tar", ["--numeric-owner", "-C", dir, "-c", "."], { keepStderr: true });
  const [repo = ref, tag = "latest"] = ref.split(":");
  const q = new URLSearchParams({ fromSrc: "-", repo, tag });
  for (const c of changes) q.append("changes", c);
  const res = await engine.stream({ method: "POST", path: `/images/create?${q}`, body: tar.stdout });
  await drainProgress(res);
  const { code, stderr } = await tar.exited;
  if (code !== 0) throw new SandboxError(`tar of the default rootfs failed: ${stderr.trim()}`);
}

/** Makes the `default` template image unless it exists. */
export async function ensureDefaultImage(engine: Engine, ref: string, changes: string[]): Promise<boolean> {
  try {
    await engine.json({ method: "GET", path: `/images/${encodeURIComponent(ref)}/json` });
    return false;
  } catch {}
  const dir = buildDefaultRootfs();
  try {
    await importDirectory(engine, dir, ref, changes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return true;
}
