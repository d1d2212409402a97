// The escape suite: each case is a program run inside a real sandbox that must be refused, and
// a look from the host that nothing changed (the host's and the sandbox's kernel-side state is
// snapshotted before and compared after every case). Reachability of other sandboxes, the
// host's services and 169.254.169.254 is covered by test/e2e/network.test.ts.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
/** The suite runs against a default sandbox (as its user) and a root sandbox (as root inside it). */
type Mode = "user" | "root";
const MODES: Mode[] = ["user", "root"];
type Box = { id: string; initPid: number; before: ReturnType<typeof hostView> };
const boxes = {} as Record<Mode, Box>;
const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const inside = async (mode: Mode, script: string) =>
  (
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${boxes[mode].id}/exec`, {
      cmd: ["sh", "-c", script],
      ...(mode === "root" ? { user: "root" } : {}),
    })
  ).body as {
    exitCode: number;
    stdout: string;
    stderr: string;
  };
/** A raw system call from Python inside the sandbox: prints "<result> <errno text>". */
const syscall = (nr: number, args = "") =>
  `python3 -c 'import ctypes,os;l=ctypes.CDLL(None,use_errno=True);a=(ctypes.c_char*256)();r=l.syscall(${nr}${args});print(r,os.strerror(ctypes.get_errno()))'`;

/** The sandbox's cgroup directory of a v1 controller, from its init's /proc/<pid>/cgroup. */
function cgroupDir(initPid: number, controller: string): string {
  const line = readFileSync(`/proc/${initPid}/cgroup`, "utf8")
    .split("\n")
    .find((l) => l.split(":")[1]?.split(",").includes(controller));
  return `/sys/fs/cgroup/${controller}${line?.split(":")[2] ?? ""}`;
}

/** What the host can see of the host and of this sandbox, kernel side. */
function hostView(id: string, initPid: number) {
  const ns = (pid: string) =>
    ["mnt", "pid", "net", "uts", "ipc", "user", "cgroup"].map((n) =>
      sh(`readlink /proc/${pid}/ns/${n} || true`).trim(),
    );
  const pids = readFileSync(`/sys/fs/cgroup/pids/berth/${id}/cgroup.procs`, "utf8")
    .split("\n")
    .filter(Boolean);
  // iproute2 names the veth peer's namespace by an id the host may renumber while other
  // tests make and remove namespaces: that id (and the note that it went stale) is not ours.
  const net = (cmd: string) =>
    sh(`nsenter -t ${initPid} -n ${cmd} 2>&1 || true`)
      .split("\n")
      .filter((l) => l !== "Error: Peer netns reference is invalid.")
      .join("\n")
      .replace(/ link-netnsid \d+/g, "");
  // A pid read from the cgroup may end and be reused by a host process before its namespaces are read.
  const inSandbox = (p: string) => {
    try {
      return readFileSync(`/proc/${p}/cgroup`, "utf8").includes(`/berth/${id}`);
    } catch {
      return false;
    }
  };
  return {
    hostname: sh("hostname"),
    // (Kernels built without module support have no /proc/modules: then nothing can load.)
    modules: existsSync("/proc/modules")
      ? readFileSync("/proc/modules", "utf8")
          .split("\n")
          .map((l) => l.split(" ")[0])
          .sort()
          .join(",")
      : "no module support",
    ksm: readFileSync("/sys/kernel/mm/ksm/run", "utf8"),
    releaseAgent: existsSync("/sys/fs/cgroup/memory/release_agent")
      ? readFileSync("/sys/fs/cgroup/memory/release_agent", "utf8")
      : "",
    memoryLimit: readFileSync(`${cgroupDir(initPid, "memory")}/memory.limit_in_bytes`, "utf8"),
    sandboxMounts: readFileSync(`/proc/${initPid}/mountinfo`, "utf8")
      .split("\n")
      .map((l) => l.split(" ").slice(4, 5).join(" "))
      .sort()
      .join("\n"),
    // Every process of the sandbox is still in the sandbox's namespaces, with its root.
    strayProcesses: pids.filter(
      (p) => existsSync(`/proc/${p}`) && ns(p).join() !== ns(String(initPid)).join() && inSandbox(p),
    ),
    routes: net("ip route"),
    addresses: net("ip -4 -o addr"),
    neighbours: net("ip neigh show nud permanent"),
    links: net("ip -o link"),
    tracer: sh(`grep TracerPid /proc/${initPid}/status`),
  };
}

beforeAll(async () => {
  if (!existsSync("/sys/fs/cgroup/pids")) throw new Error("the escape suite reads cgroup v1 paths");
  server = await startTestServer();
  for (const mode of MODES) {
    const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
      network: { egress: "open" },
      ...(mode === "root" ? { root: true } : {}),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.id as string;
    const initPid = JSON.parse(sh(`runc --root ${server.dataDir}/runtime/runc state ${id}`)).pid as number;
    boxes[mode] = { id, initPid, before: hostView(id, initPid) };
  }
});

afterAll(async () => {
  await server?.stop();
});

/**
 * Refused inside (the check on its output), and nothing changed as seen from the host. A fourth
 * element is what root says instead (util-linux tells root "permission denied", not "must be superuser").
 */
const CASES: Array<[string, string, RegExp, RegExp?]> = [
  [
    "mount a filesystem",
    "mount -t tmpfs none /mnt",
    /must be superuser|not permitted/i,
    /permission denied/i,
  ],
  ["unmount /proc", "umount /proc", /failed|not permitted|must be superuser/i],
  ["unshare a user namespace", "unshare -Ur id", /not permitted/],
  ["unshare a mount namespace", "unshare -m true", /not permitted/],
  ["chroot", "chroot / true", /not permitted/],
  ["setns into pid 1's namespaces", "nsenter -t 1 -m true", /denied|not permitted/],
  ["mknod a raw disk", "mknod /tmp/sda b 8 0", /not permitted/],
  ["open a raw device", "cat /dev/sda /dev/mem /dev/kmsg", /No such file/],
  ["load a kernel module (init_module)", syscall(175, ',a,256,"".encode()'), /not permitted/],
  ["load a kernel module (finit_module)", syscall(313, ',0,"".encode(),0'), /not permitted/],
  ["kexec_load", syscall(246, ",0,0,0,0"), /not permitted/],
  ["write /proc/sys", "echo evil > /proc/sys/kernel/hostname", /Read-only|denied/],
  ["write /proc/sysrq-trigger", "echo b > /proc/sysrq-trigger", /nonexistent|denied|Read-only/],
  // A root sandbox's /sys is an empty read-only tmpfs (see oci-spec.ts).
  ["write /sys", "echo 1 > /sys/kernel/mm/ksm/run", /Read-only|denied/, /nonexistent|Read-only/],
  [
    "raise its own memory limit",
    "echo -1 > /sys/fs/cgroup/memory/memory.limit_in_bytes",
    /nonexistent|Read-only|denied/,
  ],
  [
    "mount cgroupfs for the release_agent trick",
    "mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg && echo /evil > /tmp/cg/release_agent",
    /must be superuser|not permitted/i,
    /permission denied/i,
  ],
  [
    "ptrace berth-init (pid 1)",
    "python3 -c 'import ctypes,os;l=ctypes.CDLL(None,use_errno=True);r=l.ptrace(16,1,0,0);print(r,os.strerror(ctypes.get_errno()))'",
    /-1 Operation not permitted/,
  ],
  [
    "see host processes",
    "ls /proc | grep -E '^[0-9]+$' | wc -l | awk '$1 > 20 {print \"host pids visible\"} $1 <= 20 {print \"not permitted: own pids only\"}'",
    /not permitted: own pids only/,
  ],
  ["read host files through /proc/1/root", "cat /proc/1/root/etc/shadow", /denied|No such file/],
  ["keyctl add_key", syscall(248, ',"user".encode(),"k".encode(),"v".encode(),1,-4'), /not permitted/],
  ["perf_event_open", syscall(298, ",a,0,-1,-1,0"), /not permitted/],
  ["userfaultfd", syscall(323, ",0"), /not permitted/],
  ["bpf", syscall(321, ",0,a,128"), /not permitted/],
  [
    "a setuid binary gains nothing",
    "/usr/bin/mount -t tmpfs x /mnt; su -c id root </dev/null",
    /must be superuser[\s\S]*(abort|failure|must be run)/i,
    /permission denied/i,
  ],
  ["reach the Docker socket", "ls /var/run/docker.sock /run/docker.sock", /No such file/],
  [
    "open a raw socket (spoofed packets)",
    "python3 -c 'import socket;socket.socket(socket.AF_INET,socket.SOCK_RAW,1)'",
    /not permitted/,
  ],
  ["add a route", "ip route add 1.2.3.4 dev eth0", /not permitted/],
  ["add an address (spoofed source)", "ip addr add 10.9.9.9/32 dev eth0", /not permitted/],
  ["change its MAC address", "ip link set eth0 address 02:00:00:00:00:01", /not permitted/],
  ["poison ARP", "ip neigh add 10.9.9.8 lladdr 02:00:00:00:00:02 dev eth0", /not permitted/],
];

describe.each(MODES)("escape suite (%s): refused inside, nothing changed outside", (mode) => {
  for (const [what, script, refused, refusedToRoot] of CASES)
    it(what, async () => {
      const { id, initPid, before } = boxes[mode];
      const r = await inside(mode, script);
      expect(`${r.stdout}${r.stderr}`, `${what}: exit ${r.exitCode}`).toMatch(
        mode === "root" ? (refusedToRoot ?? refused) : refused,
      );
      const now = hostView(id, initPid);
      const changed = Object.keys(now).filter(
        (k) =>
          JSON.stringify(now[k as keyof typeof now]) !== JSON.stringify(before[k as keyof typeof before]),
      );
      expect(
        changed,
        changed.map((k) => `${k}: ${JSON.stringify(now[k as keyof typeof now])}`).join("\n"),
      ).toEqual([]);
    });

  it("the sandbox still has its capabilities (none; root: only namespaced ones), no_new_privs and a seccomp filter after all that", async () => {
    const r = await inside(mode, "grep -E 'CapEff|CapBnd|NoNewPrivs|Seccomp:' /proc/self/status; id -u");
    // Root's set: chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service
    // audit_write setfcap, all held in the sandbox's own user namespace only.
    expect(r.stdout).toMatch(
      mode === "root"
        ? /CapEff:\s+00000000a00005fb\nCapBnd:\s+00000000a00005fb\nNoNewPrivs:\s+1\nSeccomp:\s+2\n0\n/
        : /CapEff:\s+0{16}\nCapBnd:\s+0{16}\nNoNewPrivs:\s+1\nSeccomp:\s+2\n1000\n/,
    );
  });
});

describe("escape suite: the file API and archives stay inside", () => {
  const url = (p: string) => `${server.url}/v1/sandboxes/${boxes.user.id}${p}`;
  const auth = () => ({ authorization: `Bearer ${server.adminKey}` });
  const hostShadow = readFileSync("/etc/shadow", "utf8").split("\n")[0] as string;

  it("does not read host files through .., symlinks or /proc/1/root", async () => {
    await inside(
      "user",
      "ln -sf /etc/shadow /workspace/s1; ln -sf /proc/1/root/etc/shadow /workspace/s2; ln -sf ../../../../../../etc/shadow /workspace/s3",
    );
    for (const p of [
      "/workspace/../../../../etc/shadow",
      "/workspace/s1",
      "/workspace/s2",
      "/workspace/s3",
      "/proc/1/root/etc/shadow",
    ]) {
      const r = await fetch(url(`/files/content?path=${encodeURIComponent(p)}`), { headers: auth() });
      const body = await r.text();
      expect(r.status, `${p}: ${body}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(body).not.toContain(hostShadow.slice(0, 10));
    }
  });

  it("keeps ../, absolute and symlinked tar members inside the sandbox", async () => {
    const mark = `berth-escape-${Date.now()}`;
    const work = mkdtempSync(join(tmpdir(), "berth-evil-tar-"));
    try {
      writeFileSync(join(work, "f"), "pwned");
      // ../ and absolute members aimed at the host's /tmp.
      const dotdot = execFileSync("tar", [
        "-c",
        "-f",
        "-",
        "-P",
        "-C",
        work,
        `--transform=s,^,../../../../../../tmp/${mark}-a-,`,
        "f",
      ]);
      const absolute = execFileSync("tar", [
        "-c",
        "-f",
        "-",
        "-P",
        "-C",
        work,
        `--transform=s,^,/tmp/${mark}-b-,`,
        "f",
      ]);
      // A symlink member to the host's /tmp, then a file written through it.
      symlinkSync("/tmp", join(work, "link"));
      const first = execFileSync("tar", ["-c", "-f", "-", "-C", work, "link"]);
      rmSync(join(work, "link"));
      execFileSync("sh", ["-c", `mkdir -p ${work}/link && echo pwned > ${work}/link/${mark}-c`]);
      const second = execFileSync("tar", ["-c", "-f", "-", "-C", work, `link/${mark}-c`]);
      for (const tar of [dotdot, absolute, first, second]) {
        const r = await fetch(url("/archive?path=/workspace/up"), {
          method: "PUT",
          headers: auth(),
          body: tar,
        });
        // A refused member stops tar early: the answer is its error (400), never a broken
        // connection (a 500 when berth-init closed on unread stdin and the exit frame was lost).
        const text = await r.text();
        expect(r.status, text).toBeLessThan(500);
      }
      for (const suffix of ["a-f", "b-f", "c"]) expect(existsSync(`/tmp/${mark}-${suffix}`)).toBe(false);
      expect(sh(`ls /tmp | grep -c ${mark} || true`).trim()).toBe("0");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
