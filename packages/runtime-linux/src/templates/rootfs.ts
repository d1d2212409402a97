import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { SANDBOX_GID, SANDBOX_UID } from "@berth/linux-host";

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * `rel` under `root` as a real directory: missing parts are made, and a symlink or file in the
 * way is replaced (this is our own template tree, not yet used by anyone, so nothing is followed
 * out of it).
 */
function ensureDir(root: string, rel: string, mode = 0o755): string {
  let cur = root;
  for (const part of rel.split("/")) {
    cur = join(cur, part);
    const st = lstatOrNull(cur);
    if (st?.isDirectory()) continue;
    if (st) rmSync(cur, { force: true });
    mkdirSync(cur, { mode });
  }
  return cur;
}

/** A regular file at `rel` (its parent a real directory); what was there if not regular goes. */
function ensureFile(root: string, rel: string, mode: number): string {
  const parent = rel.includes("/") ? ensureDir(root, rel.slice(0, rel.lastIndexOf("/"))) : root;
  const p = join(parent, rel.slice(rel.lastIndexOf("/") + 1));
  const st = lstatOrNull(p);
  if (st && !st.isFile()) rmSync(p, { recursive: true, force: true });
  if (!st?.isFile()) writeFileSync(p, "", { mode, flag: "wx" });
  return p;
}

/** Whether an /etc/passwd or /etc/group text has an entry with id `id` (third field). */
export function hasId(text: string, id: number): boolean {
  return text.split("\n").some((line) => line.split(":")[2] === String(id));
}

/**
 * Makes an imported root filesystem fit to run as a sandbox: the mount points runc binds over
 * (`/proc`, `/sys`, `/dev`, `/run/berth`, `/.berth/init`, `/etc/resolv.conf`) exist in the
 * template rather than being made in every sandbox's own layer; `/tmp` is 1777; `/home/user` and
 * `/workspace` belong to the sandbox user; and `/etc/passwd` and `/etc/group` name uid/gid 1000
 * (`user`) when the image has no such entry. Sandboxes run as 1000 whatever the image says.
 */
export function prepareRootfs(root: string): void {
  chownSync(root, 0, 0);
  chmodSync(root, 0o755);
  for (const d of ["proc", "sys", "dev", "etc", "run/berth", ".berth", "home"]) ensureDir(root, d);
  chmodSync(ensureDir(root, "tmp"), 0o1777);
  ensureFile(root, ".berth/init", 0o755);
  ensureFile(root, "etc/resolv.conf", 0o644);
  for (const d of ["home/user", "workspace"]) {
    const p = ensureDir(root, d);
    chownSync(p, SANDBOX_UID, SANDBOX_GID);
  }
  addEntry(
    join(root, "etc/passwd"),
    SANDBOX_UID,
    "root:x:0:0:root:/root:/bin/sh",
    "user:x:%d:%d:user:/home/user:/bin/sh",
  );
  addEntry(join(root, "etc/group"), SANDBOX_GID, "root:x:0:", "user:x:%d:");
}

/** Adds `line` (with the id filled in) to the passwd-style file unless it has that id already. */
function addEntry(file: string, id: number, rootLine: string, line: string): void {
  const st = lstatOrNull(file);
  if (!st?.isFile()) {
    rmSync(file, { recursive: true, force: true });
    writeFileSync(file, `${rootLine}\n`, { mode: 0o644, flag: "wx" });
  }
  const text = readFileSync(file, "utf8");
  if (hasId(text, id)) return;
  const sep = text === "" || text.endsWith("\n") ? "" : "\n";
  // A new file renamed over the old one: the old may be a hard link shared with another template.
  rmSync(`${file}.berth-new`, { recursive: true, force: true });
  writeFileSync(`${file}.berth-new`, `${text}${sep}${line.replaceAll("%d", String(id))}\n`, {
    mode: st?.isFile() ? st.mode & 0o7777 : 0o644,
    flag: "wx",
  });
  renameSync(`${file}.berth-new`, file);
}
