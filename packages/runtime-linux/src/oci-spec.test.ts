import { describe, expect, it } from "vitest";
import { buildOciSpec, INIT_PATH, type OciSpecInput, STATE_DIR } from "./oci-spec.js";
import { defaultSeccompProfile } from "./seccomp-profile.js";

const input: OciSpecInput = {
  id: "sbabcdefghijklmnop",
  rootfs: "/data/runtime/sandboxes/sbabcdefghijklmnop/rootfs",
  resources: { cpus: 1.5, memoryMiB: 512, diskMiB: 1024, pids: 256 },
  env: { FOO: "bar", PATH: "/evil" },
  initBinary: "/opt/berth/berth-init",
  stateDir: "/data/runtime/sandboxes/sbabcdefghijklmnop/disk/state",
  cgroupsPath: "berth/sbabcdefghijklmnop",
  cgroupNamespace: true,
  nofile: 20000,
  arch: "x64",
};

const spec = buildOciSpec(input) as any;

describe("buildOciSpec", () => {
  it("runs berth-init as uid 1000 with no capabilities, no_new_privs and no extra groups", () => {
    expect(spec.process.args).toEqual([INIT_PATH]);
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [] });
    expect(spec.process.noNewPrivileges).toBe(true);
    for (const set of Object.values(spec.process.capabilities)) expect(set).toEqual([]);
    expect(spec.process.cwd).toBe("/workspace");
    expect(spec.process.rlimits).toEqual([{ type: "RLIMIT_NOFILE", hard: 20000, soft: 20000 }]);
  });

  it("sets the environment, letting the driver's PATH/HOME/state dir win over the spec's", () => {
    expect(spec.process.env).toContain("FOO=bar");
    expect(spec.process.env).toContain("PATH=/usr/local/bin:/usr/bin:/bin");
    expect(spec.process.env).not.toContain("PATH=/evil");
    expect(spec.process.env).toContain("HOME=/home/user");
    expect(spec.process.env).toContain(`BERTH_STATE_DIR=${STATE_DIR}`);
  });

  it("isolates with fresh namespaces, a cgroup namespace only when supported", () => {
    const types = spec.linux.namespaces.map((n: { type: string; path?: string }) => {
      expect(n.path).toBeUndefined(); // never join an existing (host) namespace
      return n.type;
    });
    expect(types.sort()).toEqual(["cgroup", "ipc", "mount", "network", "pid", "uts"]);
    const noCgroupNs = buildOciSpec({ ...input, cgroupNamespace: false }) as typeof spec;
    expect(noCgroupNs.linux.namespaces.map((n: { type: string }) => n.type)).not.toContain("cgroup");
    expect(spec.hostname).toBe(input.id);
  });

  it("turns resources into kernel limits (no swap, cpu quota over a 100 ms period)", () => {
    const r = spec.linux.resources;
    expect(r.memory).toEqual({ limit: 512 * 1024 * 1024, swap: 512 * 1024 * 1024 });
    expect(r.cpu).toEqual({ quota: 150_000, period: 100_000 });
    expect(r.pids).toEqual({ limit: 256 });
    expect(spec.linux.cgroupsPath).toBe("berth/sbabcdefghijklmnop");
  });

  it("denies every device but the standard ones", () => {
    const [first, ...rest] = spec.linux.resources.devices;
    expect(first).toEqual({ allow: false, access: "rwm" });
    expect(rest.every((d: { allow: boolean; type: string }) => d.allow && d.type === "c")).toBe(true);
    expect(rest.map((d: { major: number; minor?: number }) => `${d.major}:${d.minor ?? "*"}`).sort()).toEqual(
      ["1:3", "1:5", "1:7", "1:8", "1:9", "136:*", "5:0", "5:2"].sort(),
    );
  });

  it("binds host /usr and berth-init read-only and the state dir read-write", () => {
    const byDest = new Map(spec.mounts.map((m: { destination: string }) => [m.destination, m]));
    const usr = byDest.get("/usr") as any;
    expect(usr.source).toBe("/usr");
    expect(usr.options).toEqual(expect.arrayContaining(["ro", "nosuid", "nodev"]));
    const init = byDest.get(INIT_PATH) as any;
    expect(init.source).toBe(input.initBinary);
    expect(init.options).toContain("ro");
    expect((byDest.get(STATE_DIR) as any).source).toBe(input.stateDir);
    expect((byDest.get("/sys") as any).options).toContain("ro");
    expect((byDest.get("/dev/pts") as any).options).toEqual(
      expect.arrayContaining(["newinstance", "ptmxmode=0666", "gid=5"]),
    );
    expect(spec.linux.maskedPaths).toContain("/proc/kcore");
    expect(spec.linux.readonlyPaths).toContain("/proc/sys");
  });

  it("binds no host /usr for a template that brings its own (hostUsr: false), berth-init still", () => {
    const own = buildOciSpec({ ...input, hostUsr: false }) as typeof spec;
    const dests = own.mounts.map((m: { destination: string; source: string }) => m.destination);
    expect(dests).not.toContain("/usr");
    expect(own.mounts.some((m: { source: string }) => m.source === "/usr")).toBe(false);
    expect(dests).toContain(INIT_PATH);
  });

  it("caps /dev/shm at the memory limit for small sandboxes", () => {
    const small = buildOciSpec({ ...input, resources: { ...input.resources, memoryMiB: 32 } }) as typeof spec;
    const shm = small.mounts.find((m: { destination: string }) => m.destination === "/dev/shm");
    expect(shm.options).toContain(`size=${32 * 1024 * 1024}`);
  });
});

describe("defaultSeccompProfile", () => {
  const p = defaultSeccompProfile("x64");
  const allowed = new Set(
    p.syscalls.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names),
  );

  it("is an allowlist that fails everything else with EPERM", () => {
    expect(p.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    for (const name of ["read", "write", "execve", "openat", "arch_prctl", "ptrace"])
      expect(allowed).toContain(name);
  });

  it("leaves out what only CAP_SYS_ADMIN and friends may do", () => {
    for (const name of [
      "mount",
      "umount2",
      "unshare",
      "setns",
      "bpf",
      "perf_event_open",
      "reboot",
      "init_module",
      "kexec_load",
      "chroot",
      "open_by_handle_at",
      "keyctl",
      "add_key",
    ])
      expect(p.syscalls.some((s) => s.action === "SCMP_ACT_ALLOW" && s.names.includes(name))).toBe(false);
  });

  it("allows clone only without namespace flags and makes clone3 answer ENOSYS", () => {
    const clone = p.syscalls.find((s) => s.names.includes("clone"));
    expect(clone?.args).toEqual([{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
    // CLONE_NEWUSER (0x10000000) and CLONE_NEWNET (0x40000000) are both in the mask.
    expect(0x7e020000 & 0x10000000).not.toBe(0);
    expect(0x7e020000 & 0x40000000).not.toBe(0);
    expect(p.syscalls.find((s) => s.names.includes("clone3"))).toMatchObject({
      action: "SCMP_ACT_ERRNO",
      errnoRet: 38,
    });
  });

  it("refuses AF_VSOCK sockets and unusual personalities", () => {
    expect(p.syscalls.find((s) => s.names.includes("socket"))?.args).toEqual([
      { index: 0, value: 40, op: "SCMP_CMP_NE" },
    ]);
    expect(
      p.syscalls
        .filter((s) => s.names.includes("personality"))
        .every((s) => s.args?.[0]?.op === "SCMP_CMP_EQ"),
    ).toBe(true);
  });

  it("has an arm64 variant and rejects unknown architectures", () => {
    expect(defaultSeccompProfile("arm64").architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(() => defaultSeccompProfile("mips")).toThrow();
  });

  it("binds a per-start boot id file over the kernel's by a createContainer hook, read-only", () => {
    const hooked = buildOciSpec({ ...input, bootIdFile: "/b/boot_id" }) as typeof spec & {
      hooks: { createContainer: { path: string; args: string[] }[] };
    };
    expect(hooked.hooks.createContainer).toEqual([
      expect.objectContaining({
        path: "/usr/bin/mount",
        args: [
          "mount",
          "-n",
          "--bind",
          "-o",
          "ro",
          "/b/boot_id",
          `${input.rootfs}/proc/sys/kernel/random/boot_id`,
        ],
      }),
    ]);
    expect((buildOciSpec(input) as { hooks?: unknown }).hooks).toBeUndefined();
  });
});

describe("buildOciSpec for a root sandbox", () => {
  const rootSpec = buildOciSpec({
    ...input,
    netnsPath: "/run/netns/x",
    root: { hostBase: 2_000_000_000, count: 65_536, usrSource: "/data/runtime/idmapped/1-2" },
  }) as any;

  it("adds a user namespace mapping 0..65535 to the host range, with init as its root", () => {
    const map = [{ containerID: 0, hostID: 2_000_000_000, size: 65_536 }];
    expect(rootSpec.linux.uidMappings).toEqual(map);
    expect(rootSpec.linux.gidMappings).toEqual(map);
    expect(rootSpec.linux.namespaces[0]).toEqual({ type: "user" });
    expect(rootSpec.process.user).toEqual({ uid: 0, gid: 0, additionalGids: [] });
  });

  it("keeps no_new_privs and the seccomp profile, and grants no capability that reaches the host", () => {
    expect(rootSpec.process.noNewPrivileges).toBe(true);
    expect(rootSpec.linux.seccomp).toEqual(spec.linux.seccomp);
    expect(rootSpec.process.capabilities.ambient).toEqual([]);
    for (const cap of [
      "CAP_SYS_ADMIN",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_SYS_MODULE",
      "CAP_SYS_PTRACE",
      "CAP_MKNOD",
    ])
      expect(rootSpec.process.capabilities.bounding).not.toContain(cap);
  });

  it("binds the idmapped /usr and gives an empty read-only /sys", () => {
    const at = (d: string) => rootSpec.mounts.find((m: { destination: string }) => m.destination === d);
    expect(at("/usr").source).toBe("/data/runtime/idmapped/1-2");
    expect(at("/usr").options).toContain("ro");
    expect(at("/sys")).toMatchObject({ type: "tmpfs" });
    expect(at("/sys").options).toContain("ro");
  });

  it("leaves the default sandbox without a user namespace", () => {
    expect(spec.linux.uidMappings).toBeUndefined();
    expect(spec.linux.namespaces.map((n: { type: string }) => n.type)).not.toContain("user");
  });
});
