import { spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxError } from "@berth/core";
import { drainProgress, type Engine } from "./engine.js";

/** The sandbox user: uid and gid 1000, home /home/user (as in the local driver). */
export const SANDBOX_UID = 1000;

/** What of the host's /etc the default image gets: name resolution, libraries, TLS roots; nothing secret. */
const ETC_ALLOWLIST = [
  "hosts",
  "nsswitch.conf",
  "host.conf",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "alternatives",
  "ssl/certs",
  "ssl/openssl.cnf",
  "ca-certificates",
  "ca-certificates.conf",
  "localtime",
  "timezone",
  "mime.types",
  "profile",
  "profile.d",
  "bash.bashrc",
  "environment",
  "os-release",
  "inputrc",
  "debian_version",
];

const PASSWD = `root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
user:x:1000:1000:user:/home/user:/bin/bash
`;
const GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\nuser:x:1000:\n";

/**
 * Builds the `default` template's root filesystem in a temp dir: an empty /usr (the host's is
 * bound read-only at run time, as in the local driver), the usrmerge links, /etc by allowlist,
 * the sandbox user's home and /workspace. Returns the dir; the caller removes it.
 */
export function buildDefaultRootfs(hostEtc = "/etc"): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-docker-rootfs-"));
  chmodSync(dir, 0o755);
  for (const d of [
    "usr",
    "etc",
    "etc/ssl",
    "home",
    "root",
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "var",
    "var/tmp",
    "opt",
    "mnt",
    ".berth",
  ])
    mkdirSync(join(dir, d), { mode: 0o755 });
  chmodSync(join(dir, "root"), 0o700);
  for (const d of ["tmp", "var/tmp"]) chmodSync(join(dir, d), 0o1777);
  for (const [link, target] of [
    ["bin", "usr/bin"],
    ["sbin", "usr/sbin"],
    ["lib", "usr/lib"],
    ["lib64", "usr/lib64"],
  ] as const)
    symlinkSync(target, join(dir, link));
  writeFileSync(join(dir, ".berth/init"), "", { mode: 0o755 });
  for (const d of ["home/user", "workspace", "run/berth", "run/berth-sock"]) {
    mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
    chownSync(join(dir, d), SANDBOX_UID, SANDBOX_UID);
  }
  for (const name of ETC_ALLOWLIST) {
    const src = join(hostEtc, name);
    try {
      lstatSync(src);
    } catch {
      continue;
    }
    cpSync(src, join(dir, "etc", name), { recursive: true, verbatimSymlinks: true });
  }
  writeFileSync(join(dir, "etc/passwd"), PASSWD, { mode: 0o644 });
  writeFileSync(join(dir, "etc/group"), GROUP, { mode: 0o644 });
  return dir;
}

/** `docker import` of a directory (tar streamed from `tar`) as image `ref`, with `changes` (LABEL ...). */
export async function importDirectory(
  engine: Engine,
  dir: string,
  ref: string,
  changes: string[],
): Promise<void> {
  const tar = spawn("tar", ["--numeric-owner", "-C", dir, "-c", "."], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  tar.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number>((resolve) => tar.on("close", (code) => resolve(code ?? 1)));
  const [repo = ref, tag = "latest"] = ref.split(":");
  const q = new URLSearchParams({ fromSrc: "-", repo, tag });
  for (const c of changes) q.append("changes", c);
  const res = await engine.stream({ method: "POST", path: `/images/create?${q}`, body: tar.stdout });
  await drainProgress(res);
  if ((await exited) !== 0) throw new SandboxError(`tar of the default rootfs failed: ${stderr.trim()}`);
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
