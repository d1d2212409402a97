import type { Resources } from "@berth/core";
import { initEnv, SANDBOX_GID, SANDBOX_UID } from "@berth/linux-host";
import { defaultSeccompProfile, type SeccompProfile } from "./seccomp-profile.js";

/** Where berth-init sits inside every sandbox (bound read-only from the host). */
export const INIT_PATH = "/.berth/init";
/** berth-init's state dir inside the sandbox (bound from the sandbox's disk). */
export const STATE_DIR = "/run/berth";
/** The fd the listening supervisor socket arrives on (`runc run --preserve-fds 1`). */
export const LISTEN_FD = 3;

const CPU_PERIOD = 100_000;
const SHM_BYTES = 64 * 1024 * 1024;
/** Open-files limit of a sandbox, unless the server's own hard limit is lower (it cannot raise it). */
export const MAX_NOFILE = 1_048_576;

/** Everything the OCI config of one sandbox depends on. */
export interface OciSpecInput {
  id: string;
  /** The bundle's rootfs (the overlay mount point), absolute. */
  rootfs: string;
  resources: Resources;
  env: Record<string, string>;
  /** Host path of the berth-init binary. */
  initBinary: string;
  /** Host dir bound at /run/berth (on the sandbox's disk). */
  stateDir: string;
  /** runc's `cgroupsPath`: relative (`berth/<id>`, v1) or absolute under the server's cgroup (v2). */
  cgroupsPath: string;
  /** Whether the kernel and runtime support a cgroup namespace. */
  cgroupNamespace: boolean;
  /** RLIMIT_NOFILE (soft = hard); at most the server's own hard limit. */
  nofile: number;
  /** A prepared network namespace to join (its veth is set up); absent: a fresh loopback-only one. */
  netnsPath?: string;
  /** Volumes: host dirs bound read-write at their mount paths. */
  volumes?: { source: string; destination: string }[];
  /** Host file bound read-only at /etc/resolv.conf (the sandbox's DNS resolver). */
  resolvConf?: string;
  /**
   * Bind the host's /usr read-only (default: true). Only the `default` template and templates
   * built on it want it; an imported template is a complete root filesystem with its own /usr.
   */
  hostUsr?: boolean;
  /** Paths hidden when the host's /usr is bound (an empty read-only tmpfs, or /dev/null for a file). */
  hiddenPaths?: string[];
  /** Node's `process.arch`, for the seccomp profile. */
  arch?: string;
  /**
   * Host file bound read-only over the sandbox's `/proc/sys/kernel/random/boot_id` (rewritten
   * before each start, so a woken sandbox reads a new boot id as after a reboot).
   */
  bootIdFile?: string;
  /**
   * A root sandbox: its own user namespace mapping 0..count-1 to hostBase.. on the host, berth-init
   * as root there. `usrSource` is the idmapped /usr to bind instead of the host's.
   */
  root?: { hostBase: number; count: number; usrSource?: string };
}

/** util-linux `mount`, run by the OCI runtime as a createContainer hook. */
const MOUNT_BIN = "/usr/bin/mount";
/** The kernel's boot id, which containers share with the host. */
const BOOT_ID = "/proc/sys/kernel/random/boot_id";

/**
 * What root in a root sandbox may do: the usual container set, every one of them held only in
 * the sandbox's user namespace (over its own files, processes and network namespace), none on the host.
 */
export const ROOT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/** The standard device nodes every sandbox may use; everything else is denied. */
const ALLOWED_DEVICES: Array<{ type: "c"; major: number; minor?: number }> = [
  { type: "c", major: 1, minor: 3 }, // null
  { type: "c", major: 1, minor: 5 }, // zero
  { type: "c", major: 1, minor: 7 }, // full
  { type: "c", major: 1, minor: 8 }, // random
  { type: "c", major: 1, minor: 9 }, // urandom
  { type: "c", major: 5, minor: 0 }, // tty
  { type: "c", major: 5, minor: 2 }, // ptmx
  { type: "c", major: 136 }, // pts/*
];

/**
 * The OCI runtime config (`config.json`) of a sandbox: berth-init as uid 1000 with no
 * capabilities, no_new_privs and the default seccomp profile; fresh pid/ipc/uts/mount/network
 * namespaces (loopback only); host /usr read-only (unless `hostUsr` is false); kernel limits from `resources`. Pure.
 */
export function buildOciSpec(i: OciSpecInput): Record<string, unknown> {
  const memory = i.resources.memoryMiB * 1024 * 1024;
  const env = {
    ...i.env,
    ...initEnv(STATE_DIR),
    BERTH_LISTEN_FD: String(LISTEN_FD),
    // berth-init drops each request to the sandbox user unless it asks for root (PROTOCOL.md).
    ...(i.root ? { BERTH_ROOT_SANDBOX: "1" } : {}),
  };
  const noCaps = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  const rootCaps = {
    bounding: ROOT_CAPABILITIES,
    effective: ROOT_CAPABILITIES,
    inheritable: [],
    permitted: ROOT_CAPABILITIES,
    ambient: [],
  };
  const root = i.root;
  const idMap = root && [{ containerID: 0, hostID: root.hostBase, size: root.count }];
  const seccomp: SeccompProfile = defaultSeccompProfile(i.arch);
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      // A root sandbox's init is root of its user namespace; it runs each request as the
      // sandbox user unless the request asks for root (see berth-init's PROTOCOL.md).
      user: root
        ? { uid: 0, gid: 0, additionalGids: [] }
        : { uid: SANDBOX_UID, gid: SANDBOX_GID, additionalGids: [] },
      args: [INIT_PATH],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: "/workspace",
      capabilities: root ? rootCaps : noCaps,
      rlimits: [{ type: "RLIMIT_NOFILE", hard: i.nofile, soft: i.nofile }],
      noNewPrivileges: true,
    },
    root: { path: i.rootfs, readonly: false },
    hostname: i.id,
    // runc refuses spec mounts under /proc (but for a few lxcfs files), so the boot id is bound
    // by a createContainer hook: it runs in the container's mount namespace after its /proc is
    // mounted and before pivot_root (host paths still visible); /proc/sys goes read-only after it.
    ...(i.bootIdFile
      ? {
          hooks: {
            createContainer: [
              {
                path: MOUNT_BIN,
                // In a root sandbox's user namespace the hook may bind but not remount read-only
                // (the remount fails with EPERM); the file is mode 0444 and owned by host root, an
                // id not mapped into the namespace, so root there cannot write it either way.
                args: [
                  "mount",
                  "-n",
                  "--bind",
                  ...(i.root ? [] : ["-o", "ro"]),
                  i.bootIdFile,
                  `${i.rootfs}${BOOT_ID}`,
                ],
                timeout: 10,
              },
            ],
          },
        }
      : {}),
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${Math.min(SHM_BYTES, memory)}`],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      // sysfs needs CAP_SYS_ADMIN over the network namespace's owner, which a root sandbox's
      // root lacks for the host-made namespace it joins: it gets an empty read-only /sys instead
      // (nothing of the host's sysfs shows; programs fall back to /proc for CPU counts).
      root
        ? {
            destination: "/sys",
            type: "tmpfs",
            source: "tmpfs",
            options: ["nosuid", "noexec", "nodev", "ro", "mode=755", "size=4k"],
          }
        : {
            destination: "/sys",
            type: "sysfs",
            source: "sysfs",
            options: ["nosuid", "noexec", "nodev", "ro"],
          },
      ...(i.hostUsr === false
        ? []
        : [
            {
              destination: "/usr",
              type: "bind",
              source: root?.usrSource ?? "/usr",
              options: ["rbind", "ro", "nosuid", "nodev"],
            },
          ]),
      {
        destination: INIT_PATH,
        type: "bind",
        source: i.initBinary,
        options: ["bind", "ro", "nosuid", "nodev"],
      },
      {
        destination: STATE_DIR,
        type: "bind",
        source: i.stateDir,
        options: ["bind", "rw", "nosuid", "nodev"],
      },
      ...(i.volumes ?? []).map((v) => ({
        destination: v.destination,
        type: "bind",
        source: v.source,
        options: ["rbind", "rw", "nosuid", "nodev"],
      })),
      ...(i.resolvConf
        ? [
            {
              destination: "/etc/resolv.conf",
              type: "bind",
              source: i.resolvConf,
              options: ["bind", "ro", "nosuid", "nodev", "noexec"],
            },
          ]
        : []),
    ],
    linux: {
      cgroupsPath: i.cgroupsPath,
      resources: {
        devices: [
          { allow: false, access: "rwm" },
          ...ALLOWED_DEVICES.map((d) => ({ allow: true, access: "rwm", ...d })),
        ],
        // swap = memory: the sandbox gets no swap, so the limit is real memory.
        memory: { limit: memory, swap: memory },
        cpu: { quota: Math.max(1000, Math.round(i.resources.cpus * CPU_PERIOD)), period: CPU_PERIOD },
        pids: { limit: i.resources.pids },
      },
      ...(idMap ? { uidMappings: idMap, gidMappings: idMap } : {}),
      namespaces: [
        ...(root ? [{ type: "user" }] : []),
        { type: "pid" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        i.netnsPath ? { type: "network", path: i.netnsPath } : { type: "network" },
        ...(i.cgroupNamespace ? [{ type: "cgroup" }] : []),
      ],
      seccomp,
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
        // What the host keeps under /usr that is not for sandboxes (npm's and others' config).
        ...(i.hostUsr === false ? [] : (i.hiddenPaths ?? [])),
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
