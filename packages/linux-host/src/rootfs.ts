import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/** The sandbox user: uid and gid 1000, home /home/user. */
export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;

/**
 * The environment berth-init starts with in either local driver, beneath the sandbox's own:
 * the sandbox user's PATH, HOME and USER, and where berth-init keeps its state.
 */
export function initEnv(stateDir: string): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: "/home/user",
    USER: "user",
    BERTH_STATE_DIR: stateDir,
  };
}

/**
 * What of the host's /etc a sandbox gets. Programs need these to resolve names, find libraries
 * and trust TLS; nothing secret (shadow, gshadow, ssh host keys, sudoers, ssl/private) is here.
 */
export const ETC_ALLOWLIST = [
  "hosts",
  "resolv.conf",
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
  "gitconfig",
  "inputrc",
  "debian_version",
] as const;

const PASSWD = `root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
user:x:${SANDBOX_UID}:${SANDBOX_GID}:user:/home/user:/bin/bash
`;
const GROUP = `root:x:0:
tty:x:5:
nogroup:x:65534:
user:x:${SANDBOX_GID}:
`;

/**
 * Writes the skeleton of the `default` root filesystem into the empty dir `dir`: an empty `/usr`
 * (the host's is bound read-only at run time), the usrmerge links, an /etc copied from the host
 * by allowlist (less `omitEtc`, files the driver provides itself), the sandbox user's passwd and
 * group, and `userDirs` owned by the sandbox user. Both local drivers build their default from it.
 */
export function writeRootfsSkeleton(
  dir: string,
  o: { hostEtc?: string; omitEtc?: readonly string[]; userDirs: readonly string[] },
): void {
  chmodSync(dir, 0o755);
  for (const d of [
    "usr",
    "etc",
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
  for (const [link, target] of [
    ["bin", "usr/bin"],
    ["sbin", "usr/sbin"],
    ["lib", "usr/lib"],
    ["lib64", "usr/lib64"],
  ] as const)
    symlinkSync(target, join(dir, link));
  // Mount points for files bound at run time must exist in the lower layer, or the runtime would
  // create them in the sandbox's writable layer on every start.
  writeFileSync(join(dir, ".berth/init"), "", { mode: 0o755 });
  for (const d of ["tmp", "var/tmp"]) chmodSync(join(dir, d), 0o1777);
  for (const d of o.userDirs) {
    mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
    chownSync(join(dir, d), SANDBOX_UID, SANDBOX_GID);
  }
  copyEtc(o.hostEtc ?? "/etc", join(dir, "etc"), o.omitEtc ?? []);
  writeFileSync(join(dir, "etc/passwd"), PASSWD, { mode: 0o644 });
  writeFileSync(join(dir, "etc/group"), GROUP, { mode: 0o644 });
}

/**
 * Builds the local driver's default template rootfs at `dest` unless it is there (the skeleton,
 * a root-owned /run/berth and a hostname). Built in a temporary directory and renamed into
 * place, so a crash never leaves half a template.
 */
export function ensureDefaultTemplate(dest: string, hostEtc = "/etc"): boolean {
  if (existsSync(join(dest, ".berth-template"))) return false;
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  writeRootfsSkeleton(tmp, { hostEtc, userDirs: ["home/user", "workspace"] });
  mkdirSync(join(tmp, "run/berth"), { mode: 0o755 });
  writeFileSync(join(tmp, "etc/hostname"), "sandbox\n", { mode: 0o644 });
  writeFileSync(join(tmp, ".berth-template"), "default\n", { mode: 0o644 });
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return true;
}

function copyEtc(hostEtc: string, etc: string, omit: readonly string[]): void {
  mkdirSync(join(etc, "ssl"), { mode: 0o755 });
  for (const name of ETC_ALLOWLIST) {
    const src = join(hostEtc, name);
    if (omit.includes(name) || !exists(src)) continue;
    // Symlinks stay symlinks (alternatives, localtime, os-release point into /usr, which is bound).
    cpSync(src, join(etc, name), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  }
  // Belt and braces: the allowlist never names these, but a host could symlink them in.
  for (const secret of readdirSync(etc))
    if (/^(shadow|gshadow|sudoers)/.test(secret)) rmSync(join(etc, secret), { recursive: true, force: true });
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
