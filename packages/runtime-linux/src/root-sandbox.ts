import {
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { BerthError, type Logger } from "@berth/core";
import { DISK_STATE, DISK_UPPER, mountOverlay, mountPoints, run, unmount } from "@berth/linux-host";
import type { IdmappedViews } from "./idmapped-views.js";
import type { SandboxPaths } from "./paths.js";

/** Ids a root sandbox's user namespace maps: 0..65535 inside, `hostBase`.. on the host. */
export const ROOT_ID_COUNT = 65_536;

/** The user namespace of a root sandbox: uid and gid 0..count-1 inside are hostBase.. outside. */
export interface RootIds {
  hostBase: number;
  count: number;
}

/** Where a root sandbox's idmapped volume mounts sit in its bundle dir (host-only, like the rest). */
function volumeView(p: SandboxPaths, i: number): string {
  return join(p.dir, "volumes", String(i));
}

/**
 * Why this host cannot run root sandboxes, or null when it can. Asked once per runtime: user
 * namespaces must be allowed (`user.max_user_namespaces` > 0) and the kernel must make idmapped
 * mounts of the data dir's filesystem (Linux 5.12+, ext4/xfs/btrfs; tried for real on a scratch dir).
 */
export async function rootUnavailableReason(
  idmapBinary: string,
  scratch: string,
  ids: RootIds,
  dataDir: string,
) {
  const closed = closedAncestor(dataDir);
  if (closed) return closed;
  let max = 0;
  try {
    max = Number(readFileSync("/proc/sys/user/max_user_namespaces", "utf8").trim());
  } catch {
    return "the kernel has no user namespaces (CONFIG_USER_NS)";
  }
  if (!(max > 0)) return "user namespaces are off: set the sysctl user.max_user_namespaces above 0";
  const src = join(scratch, "src");
  const at = join(scratch, "at");
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(src, { recursive: true, mode: 0o700 });
  mkdirSync(at, { mode: 0o700 });
  try {
    await run(idmapBinary, [String(ids.hostBase), String(ids.count), src, at, "ro"], { timeoutMs: 10_000 });
    const owner = lstatSync(at).uid;
    await run("umount", [at], { timeoutMs: 10_000 });
    if (owner !== ids.hostBase) return "the kernel made the idmapped mount but did not shift its owners";
    return null;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    return `the kernel cannot make idmapped mounts of the data dir's filesystem (${stderr.trim()}): Linux 5.12+ with ext4, xfs or btrfs is needed`;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The first directory above the data dir that an unprivileged id cannot pass through, said as
 * what to do, or null. runc sets up a root sandbox's mounts as the sandbox's host id, which must
 * search every directory on the way to its bundle: those in the data dir are granted
 * (grantTraversal), those above it are the operator's.
 */
function closedAncestor(dataDir: string): string | null {
  for (let dir = dirname(resolve(dataDir)); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0)
      return `${dir} (above the data dir) is not searchable by other users (mode ${mode.toString(8).padStart(4, "0")}), and a root sandbox's mounts are set up by an unprivileged host id that must pass through it: chmod o+x ${dir}, or set BERTH_DATA_DIR elsewhere`;
    if (dir === dirname(dir)) return null;
  }
}

/** The error a root create answers on a host that cannot run root sandboxes. */
export function rootUnavailableError(reason: string): BerthError {
  return new BerthError("root_unavailable", `root sandboxes are not available on this host: ${reason}`);
}

/**
 * Makes the mounted slot at `p` a root sandbox's root filesystem: the template (lower layer)
 * idmapped so its files, owned by host root, read as owned by root inside; the writable layer's
 * owners shifted into the sandbox's host range (overlayfs cannot write through an idmapped upper
 * layer when mounted by host root, so the upper layer holds shifted ids); the state dir owned by
 * the sandbox user inside. Also idmaps the host's /usr when the template binds it. Idempotent
 * (wake runs it again on a kept disk). Resolves with the /usr source to bind, if any.
 */
export async function mountRootFilesystem(
  p: SandboxPaths,
  template: string,
  o: {
    ids: RootIds;
    views: IdmappedViews;
    hostUsr: boolean;
    /** The data dir's dirs above the sandbox's (see grantTraversal). */
    ancestors: string[];
    log: Logger;
    signal?: AbortSignal;
  },
): Promise<{ usr?: string }> {
  mkdirSync(o.views.dir, { recursive: true, mode: 0o700 });
  grantTraversal([...o.ancestors, o.views.dir, p.dir], o.ids.hostBase);
  const [lower, usr] = await Promise.all([
    o.views.view(template),
    o.hostUsr ? o.views.view("/usr") : undefined,
  ]);
  await unmount(p.rootfs, await mountPoints(), o.log);
  shiftLayer(join(p.disk, DISK_UPPER), o.ids.hostBase);
  const state = join(p.disk, DISK_STATE);
  if (lstatSync(state).uid < o.ids.hostBase) shiftTree(state, o.ids.hostBase);
  await mountOverlay(lower, p.disk, p.rootfs, o);
  return usr ? { usr } : {};
}

/**
 * runc sets up a root sandbox's mounts from inside its user namespace, as the sandbox's root
 * (host uid and gid hostBase), so that id must be able to pass through the data dir's 0700 dirs
 * down to the bundle. Each dir gets group hostBase and mode 0710: search only, for that group
 * only (no host account has it; the sandbox itself never sees these paths after pivot_root).
 */
export function grantTraversal(dirs: string[], gid: number): void {
  for (const dir of dirs) {
    const st = lstatSync(dir);
    if (st.gid !== gid) chownSync(dir, st.uid, gid);
    if ((st.mode & 0o777) !== 0o710) chmodSync(dir, 0o710);
  }
}

/** Idmaps each volume's host dir for a root sandbox; resolves with the sources to bind. */
export async function idmapVolumes(
  p: SandboxPaths,
  sources: string[],
  o: { ids: RootIds; idmapBinary: string; log: Logger; signal?: AbortSignal },
): Promise<string[]> {
  const out: string[] = [];
  if (sources.length > 0) {
    mkdirSync(join(p.dir, "volumes"), { recursive: true, mode: 0o700 });
    grantTraversal([join(p.dir, "volumes")], o.ids.hostBase);
  }
  for (const [i, source] of sources.entries()) {
    const at = volumeView(p, i);
    await idmap(source, at, false, o);
    out.push(at);
  }
  return out;
}

/** Mounts `source` at `at` with ids shifted by the sandbox's range (replacing an earlier one there). */
async function idmap(
  source: string,
  at: string,
  readOnly: boolean,
  o: { ids: RootIds; idmapBinary: string; log: Logger; signal?: AbortSignal },
): Promise<void> {
  await unmount(at, await mountPoints(), o.log);
  mkdirSync(at, { recursive: true, mode: 0o700 });
  const args = [String(o.ids.hostBase), String(o.ids.count), source, at, ...(readOnly ? ["ro"] : [])];
  await run(o.idmapBinary, args, { log: o.log, signal: o.signal, timeoutMs: 30_000 });
}

/**
 * Brings a writable layer to root-sandbox ownership: a layer made by a non-root sandbox (a
 * fresh disk, a snapshot) holds host ids (0, 1000); they are moved into the range. A layer whose
 * top is already in the range is left alone, so this costs one stat on every later start.
 */
export function shiftLayer(upper: string, hostBase: number): void {
  if (lstatSync(upper).uid >= hostBase) return;
  shiftTree(upper, hostBase);
}

/**
 * Brings a writable layer made by a root sandbox back to host ids (a snapshot of a root sandbox
 * restored into a non-root one). The inverse of shiftLayer; a no-op on a non-root layer.
 */
export function unshiftLayer(upper: string, hostBase: number): void {
  if (lstatSync(upper).uid < hostBase) return;
  shiftTree(upper, -hostBase);
}

/**
 * Adds `delta` to the owner and group of every entry under and including `dir`. chown clears
 * setuid/setgid bits, so a file's mode is put back after. Ids out of the range stay as they are.
 */
function shiftTree(dir: string, delta: number): void {
  const walk = (path: string) => {
    const st = lstatSync(path);
    const uid = st.uid + delta;
    const gid = st.gid + delta;
    if (uid >= 0 && gid >= 0 && uid < 2 ** 32 - 1 && gid < 2 ** 32 - 1) {
      lchownSync(path, uid, gid);
      if (!st.isSymbolicLink() && st.mode & 0o6000) chmodSync(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
}
