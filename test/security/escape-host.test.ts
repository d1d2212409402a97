// Escape attempts aimed at what the host owns, beside escape.test.ts: a host process and a
// sibling sandbox's process (ptrace, signals, memory), berth-init's memory, the Berth API and
// host listeners over IPv4 and IPv6 link-local, host files through file-API writes, deletes and
// tar hard links, the host's read-only /usr and the berth-init binary, syscalls the seccomp
// profile denies, cgroup limits, and packets with a spoofed source (watched on the host end of
// the sandbox's veth). Each case checks the refusal inside and the absence of effect outside.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
let id: string;
let sibling: string;
let initPid: number;
let hostSleep: ChildProcess;
const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const inside = async (script: string, sandbox = id) =>
  (await api(server, server.adminKey, "POST", `/v1/sandboxes/${sandbox}/exec`, { cmd: ["sh", "-c", script] }))
    .body as { exitCode: number; stdout: string; stderr: string };
const py = (lines: string[]) => `python3 -c '${lines.join("\n")}' 2>&1`;
const PY_LIBC = "import ctypes,os;l=ctypes.CDLL(None,use_errno=True)";
const url = (p: string) => `${server.url}/v1/sandboxes/${id}${p}`;
const auth = () => ({ authorization: `Bearer ${server.adminKey}` });
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const status = (pid: number, key: string) =>
  readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s*(.*)$`, "m"))?.[1] ?? "";
/** The host pid of the sandbox's process whose command line contains `needle`. */
const hostPidOf = (sandbox: string, needle: string) =>
  Number(
    readFileSync(`/sys/fs/cgroup/pids/berth/${sandbox}/cgroup.procs`, "utf8")
      .split("\n")
      .filter(Boolean)
      .find(
        (p) =>
          existsSync(`/proc/${p}/cmdline`) && readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle),
      ),
  );
/** The sandbox's cgroup directory of a v1 controller. */
const cgroupDir = (controller: string) =>
  `/sys/fs/cgroup/${controller}${
    readFileSync(`/proc/${initPid}/cgroup`, "utf8")
      .split("\n")
      .find((l) => l.split(":")[1]?.split(",").includes(controller))
      ?.split(":")[2] ?? ""
  }`;
/** The host side of the sandbox's veth (eth0@ifN inside is ifindex N on the host). */
const hostVeth = () => {
  const n = sh(`nsenter -t ${initPid} -n ip -o link show eth0`).match(/eth0@if(\d+)/)?.[1];
  return sh(`ip -o link`).match(new RegExp(`^${n}: ([^:@]+)`, "m"))?.[1] as string;
};

beforeAll(async () => {
  if (!existsSync("/sys/fs/cgroup/pids")) throw new Error("the escape suite reads cgroup v1 paths");
  server = await startTestServer();
  const make = async () => {
    const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", { network: { egress: "open" } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.id as string;
  };
  [id, sibling] = [await make(), await make()];
  initPid = JSON.parse(sh(`runc --root ${server.dataDir}/runtime/runc state ${id}`)).pid;
  await api(server, server.adminKey, "POST", `/v1/sandboxes/${sibling}/processes`, {
    cmd: ["sleep", "601"],
  });
  hostSleep = spawn("sleep", ["602"], { stdio: "ignore" });
});

afterAll(async () => {
  hostSleep?.kill("SIGKILL");
  await server?.stop();
});

describe("escape suite: other processes", () => {
  /** Tries ptrace attach/seize, kill and /proc/<pid>/mem on a pid; prints one errno each. */
  const attack = (pid: number) =>
    py([
      PY_LIBC,
      `p=${pid}`,
      'for name,r in [("attach",l.ptrace(16,p,0,0)),("seize",l.ptrace(0x4206,p,0,0)),("kill",l.kill(p,9))]: print(name,r,os.strerror(ctypes.get_errno()))',
      'try: open("/proc/%d/mem"%p,"r+b"); print("mem opened")',
      'except OSError as e: print("mem",e.strerror)',
    ]);
  const untouched = (pid: number) => {
    expect(existsSync(`/proc/${pid}`), `pid ${pid} alive`).toBe(true);
    expect(status(pid, "TracerPid")).toBe("0");
    expect(status(pid, "State")).not.toMatch(/^[TtZ]/);
  };

  it("cannot ptrace, kill or open the memory of a host process", async () => {
    const pid = hostSleep.pid as number;
    const r = await inside(attack(pid));
    expect(r.stdout).toMatch(
      /attach -1 No such process\nseize -1 No such process\nkill -1 No such process\nmem No such file/,
    );
    untouched(pid);
  });

  it("cannot ptrace, kill or open the memory of a sibling sandbox's process, by host or own pid", async () => {
    const pid = hostPidOf(sibling, "sleep\u0000601");
    const nsPid = Number(status(pid, "NSpid").split(/\s+/).at(-1));
    const byHost = await inside(attack(pid));
    expect(byHost.stdout).toMatch(
      /attach -1 No such process\nseize -1 No such process\nkill -1 No such process/,
    );
    // The same number inside this sandbox is at most one of its own processes (or none).
    const ownPids = (await inside("ls /proc | grep -E '^[0-9]+$'")).stdout.split("\n");
    if (!ownPids.includes(String(nsPid))) {
      const byNs = await inside(attack(nsPid));
      expect(byNs.stdout).toMatch(/attach -1 No such process/);
    }
    untouched(pid);
  });

  it("cannot write berth-init's memory or read its environment", async () => {
    const r = await inside(
      `echo x > /proc/1/mem; cat /proc/1/environ; ${py([
        PY_LIBC,
        "b=ctypes.create_string_buffer(8);v=(ctypes.c_void_p*2)(ctypes.addressof(b),8)",
        'print("vm_writev",l.process_vm_writev(1,v,1,v,1,0),os.strerror(ctypes.get_errno()))',
      ])}`,
    );
    expect(r.stderr).toMatch(/\/proc\/1\/mem: Permission denied/);
    expect(r.stderr).toMatch(/environ: Permission denied/);
    expect(r.stdout).toMatch(/vm_writev -1 (Operation not permitted|No such process)/);
    expect(r.stdout).not.toContain(server.adminKey);
    untouched(initPid);
    expect((await inside("echo ok")).stdout).toBe("ok\n");
  });
});

describe("escape suite: the host's files and the Berth API", () => {
  it("holds no host secret and sees no host socket, data dir or runtime state", async () => {
    const r = await inside(
      `grep -rls '${server.adminKey}' /etc /run /tmp /workspace /home /.berth 2>/dev/null; find / -xdev -type s 2>/dev/null; ls -d /tmp/berth-e2e-* ${server.dataDir} /run/runc /var/run/docker.sock /run/containerd`,
    );
    expect(r.stdout).not.toMatch(/\S/);
    expect(r.stderr.trim().split("\n")).toHaveLength(5);
    expect(r.stderr).not.toMatch(/^(?!ls: cannot access).+$/m);
  });

  it("reaches neither the Berth API nor a host listener on every address (IPv4, IPv6 link-local) or an abstract unix socket", async () => {
    // A stand-in for a Berth API bound to every address (BERTH_HOST=0.0.0.0/::).
    let accepted = 0;
    const listener: Server = createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, "::", r));
    const port = (listener.address() as { port: number }).port;
    // And one on an abstract unix socket (those are per network namespace, not per path).
    const abstract = `berth-escape-${process.pid}`;
    const unixListener: Server = createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => unixListener.listen(`\0${abstract}`, r));
    const apiPort = new URL(server.url).port;
    try {
      const veth = hostVeth();
      const linkLocal = sh(`ip -6 -o addr show dev ${veth} scope link`).match(
        /inet6 (fe80::[0-9a-f:]+)/,
      )?.[1];
      const gateway = sh(`nsenter -t ${initPid} -n ip route`).match(/default via (\S+)/)?.[1];
      const targets = [
        ["127.0.0.1", apiPort],
        [gateway, apiPort],
        [gateway, port],
        ...(linkLocal ? [[`${linkLocal}%eth0`, port]] : []),
      ];
      const r = await inside(
        py([
          "import socket",
          ...targets.map(
            ([h, p]) =>
              `try: socket.create_connection(("${h}",${p}),timeout=1); print("CONNECTED ${h}:${p}")\nexcept OSError as e: print("refused ${h}:${p}",e)`,
          ),
          `try: socket.socket(socket.AF_UNIX).connect("\\0${abstract}"); print("CONNECTED @${abstract}")\nexcept OSError as e: print("refused @${abstract}",e)`,
        ]),
      );
      expect(r.stdout).not.toContain("CONNECTED");
      expect(r.stdout.match(/^refused /gm)).toHaveLength(targets.length + 1);
      // The abstract name does not exist in the sandbox's network namespace.
      expect(r.stdout).toMatch(/^refused @\S+ \[Errno 111\] Connection refused$/m);
      expect(accepted).toBe(0);
    } finally {
      listener.close();
      unixListener.close();
    }
  });

  it("the file API writes and deletes nothing outside: .., symlinks, /proc/1/root, /usr, berth-init", async () => {
    const mark = `berth-escape-${Date.now()}`;
    const initSource = JSON.parse(
      readFileSync(`${server.dataDir}/runtime/sandboxes/${id}/config.json`, "utf8"),
    ).mounts.find((m: { destination: string }) => m.destination === "/.berth/init").source as string;
    const initHash = sha(initSource);
    await inside("ln -sfn /tmp /workspace/lt; ln -sfn /usr/bin /workspace/lu; ln -sfn /.berth /workspace/lb");
    for (const p of [
      `/workspace/lu/${mark}`,
      `/usr/local/${mark}`,
      `/proc/1/root/usr/${mark}`,
      "/workspace/lb/init",
      "/.berth/init",
      `/etc/${mark}`,
    ]) {
      const r = await fetch(url(`/files/content?path=${encodeURIComponent(p)}`), {
        method: "PUT",
        headers: auth(),
        body: "pwned",
      });
      expect(r.status, `${p}: ${await r.text()}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    // These land in the sandbox's own /tmp: allowed, and nothing on the host's.
    for (const p of [
      `/workspace/../../../tmp/${mark}-a`,
      `/workspace/lt/${mark}-b`,
      `/proc/1/root/tmp/${mark}-c`,
    ])
      await fetch(url(`/files/content?path=${encodeURIComponent(p)}`), {
        method: "PUT",
        headers: auth(),
        body: "x",
      });
    for (const p of ["/usr/bin/sh", "/workspace/lu/env", "/.berth/init", "/workspace/../../usr/bin/perl"]) {
      const r = await fetch(url(`/files?path=${encodeURIComponent(p)}`), {
        method: "DELETE",
        headers: auth(),
      });
      expect(r.status, `DELETE ${p}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const moved = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/files/move`, {
      from: "/usr/bin/env",
      to: "/workspace/env",
    });
    expect(moved.status).toBeGreaterThanOrEqual(400);
    expect(sh(`ls /tmp /usr/bin /usr/local /etc | grep -c ${mark} || true`).trim()).toBe("0");
    for (const f of ["/usr/bin/sh", "/usr/bin/env", "/usr/bin/perl"]) expect(existsSync(f), f).toBe(true);
    expect(sha(initSource)).toBe(initHash);
    // And from a shell: /usr and berth-init are read-only.
    const r = await inside(`touch /usr/${mark}; cp /bin/true /.berth/init; rm -f /usr/bin/env`);
    expect(r.stderr).toMatch(/Read-only file system[\s\S]*Read-only file system[\s\S]*(Read-only|denied)/);
    expect(existsSync(`/usr/${mark}`)).toBe(false);
    expect(sha(initSource)).toBe(initHash);
  });

  it("a tar upload's hard links to files outside the target, and setuid members, gain nothing", async () => {
    const work = mkdtempSync(join(tmpdir(), "berth-evil-tar-"));
    try {
      writeFileSync(join(work, "suid"), "#!/bin/sh\nid -u\n", { mode: 0o4755 });
      sh(`chown root:root ${work}/suid && chmod 4755 ${work}/suid`);
      sh(`ln -f ${work}/suid ${work}/h`);
      const tars = [
        // A member named /etc/shadow hard-linked to a setuid-root file, and a root-owned setuid file.
        execFileSync("tar", [
          "-c",
          "-f",
          "-",
          "-P",
          "-C",
          work,
          "--transform=s,^suid$,/etc/shadow,",
          "suid",
          "h",
        ]),
        execFileSync("tar", ["-c", "-f", "-", "-C", work, "--owner=0", "--group=0", "suid"]),
      ];
      // A raw member list: "shadow" hard-linked to /etc/shadow, "su" to /usr/bin/su.
      const links = execFileSync("python3", [
        "-c",
        [
          "import tarfile,io,sys",
          "b=io.BytesIO();t=tarfile.open(fileobj=b,mode='w')",
          "for n,target in [('shadow','/etc/shadow'),('su','/usr/bin/su'),('up','../../../../etc/passwd')]:",
          "  i=tarfile.TarInfo(n);i.type=tarfile.LNKTYPE;i.linkname=target;t.addfile(i)",
          "t.close();sys.stdout.buffer.write(b.getvalue())",
        ].join("\n"),
      ]);
      for (const tar of [...tars, links]) {
        const r = await fetch(url("/archive?path=/workspace/tarup"), {
          method: "PUT",
          headers: auth(),
          body: tar,
        });
        expect(r.status).toBeLessThan(500);
      }
      const hostShadow = (readFileSync("/etc/shadow", "utf8").split("\n")[0] as string).slice(0, 10);
      const r = await inside(
        "cd /workspace/tarup 2>/dev/null && ls -ln; cat shadow su 2>&1 | head -c 200; stat -c '%U %A' suid su 2>&1; ./suid",
      );
      expect(r.stdout).not.toContain(hostShadow);
      // Any setuid member is owned by the sandbox's user (or lost its bit), so runs as uid 1000.
      expect(r.stdout).not.toMatch(/^root -..s/m);
      expect(r.stdout.trim().split("\n").at(-1)).toMatch(/^(1000)?$/);
      expect(readFileSync("/etc/shadow", "utf8").split("\n")[0]).toContain(hostShadow);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe("escape suite: kernel interfaces", () => {
  // x86_64 numbers; each is called with harmless arguments, so even an allowed call changes nothing.
  const DENIED: Array<[string, number, string]> = [
    ["pivot_root", 155, ",a,a"],
    ["swapon", 167, ",a,0"],
    ["umount2", 166, ',"/proc".encode(),2'],
    ["reboot", 169, ",0,0,0,0"],
    ["settimeofday", 164, ",0,0"],
    ["clock_settime", 227, ",0,0"],
    ["acct", 163, ",0"],
    ["syslog", 103, ",3,a,256"],
    ["sethostname", 170, ',"evil".encode(),4'],
    ["iopl", 172, ",3"],
    ["ioperm", 173, ",0x70,2,1"],
    ["quotactl", 179, ",0,a,0,0"],
    ["open_by_handle_at (shocker)", 304, ",-100,a,0"],
    ["delete_module", 176, ',"ext4".encode(),0'],
    ["request_key", 249, ',"user".encode(),"k".encode(),0,0'],
    ["keyctl (join session keyring)", 250, ",1,0"],
    ["fsopen (new mount API)", 430, ',"tmpfs".encode(),0'],
    ["open_tree", 428, ',-100,"/".encode(),1'],
    ["move_mount", 429, ',-100,"/".encode(),-100,"/tmp".encode(),0'],
    ["fspick", 433, ',-100,"/".encode(),0'],
    ["mount_setattr", 442, ',-100,"/".encode(),0,a,32'],
    ["clone(CLONE_NEWUSER)", 56, ",0x10000011,0,0,0,0"],
    ["clone(CLONE_NEWNET)", 56, ",0x40000011,0,0,0,0"],
    ["lookup_dcookie", 212, ",0,a,256"],
    ["vhangup", 153, ""],
    // The kernel surface most exploits of recent years went through; Docker refuses it since v25.
    ["io_uring_setup", 425, ",1,a"],
  ];

  it("the seccomp profile refuses mount, clock, swap, reboot, handle, keyring, namespace and io_uring calls", async () => {
    const swaps = readFileSync("/proc/swaps", "utf8");
    const hostname = sh("hostname");
    const clockSkew = () => Math.abs(Number(sh("date +%s.%N")) * 1000 - Date.now());
    const r = await inside(
      py([
        `${PY_LIBC};a=(ctypes.c_char*256)()`,
        ...DENIED.map(
          ([name, nr, args]) =>
            `r=l.syscall(${nr}${args});e=ctypes.get_errno()\nif r==0 and ${nr}==56: os._exit(0)\nprint("${name}",r,os.strerror(e))`,
        ),
      ]),
    );
    for (const [name] of DENIED) expect(r.stdout, name).toContain(`${name} -1 Operation not permitted\n`);
    expect(readFileSync("/proc/swaps", "utf8")).toBe(swaps);
    expect(sh("hostname")).toBe(hostname);
    expect(clockSkew()).toBeLessThan(5000);
    expect((await inside("mount | grep -c ' /proc '")).stdout.trim()).toBe("1");
    // Programs that would use io_uring fall back to plain syscalls.
    const node = await inside(
      `node -e 'require("fs").promises.writeFile("/tmp/n","ok").then(()=>require("fs").promises.readFile("/tmp/n","utf8")).then(console.log)'`,
    );
    expect(node.stdout).toBe("ok\n");
  });

  it("cannot raise its own pids, CPU or memory limits through /sys/fs/cgroup or /proc/self/cgroup paths", async () => {
    const files = [
      [cgroupDir("pids"), "pids.max"],
      [cgroupDir("cpu"), "cpu.cfs_quota_us"],
      [cgroupDir("memory"), "memory.limit_in_bytes"],
    ] as const;
    const before = files.map(([d, f]) => readFileSync(`${d}/${f}`, "utf8"));
    const r = await inside(
      files
        .map(
          ([d, f]) =>
            `echo -1 > /sys/fs/cgroup/${f}; echo -1 > /sys/fs/cgroup/${d.split("/")[4]}/${f}; echo -1 > /sys/fs/cgroup/${d.split("/").slice(4).join("/")}/${f}`,
        )
        .join("; "),
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(9);
    expect(r.stderr).not.toMatch(/^(?!.*(nonexistent|Read-only|denied|No such file)).+$/m);
    expect(files.map(([d, f]) => readFileSync(`${d}/${f}`, "utf8"))).toEqual(before);
  });

  it("sends no packet with a spoofed source: raw and packet sockets, IP_FREEBIND, IP_TRANSPARENT, IPv6", async () => {
    const veth = hostVeth();
    const own = sh(`nsenter -t ${initPid} -n ip -4 -o addr show dev eth0`).match(/inet ([\d.]+)/)?.[1];
    // A capture on the host end of the veth: every source address that leaves the sandbox. It
    // says when it listens and stops when its stdin closes (a fixed window missed the control
    // packet when the sandbox's python started slowly under a loaded CI run).
    const capture = spawn("python3", [
      "-c",
      [
        "import socket,time,sys,select",
        `s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3));s.bind(("${veth}",0))`,
        "print('ready',flush=True)",
        "end=time.time()+60;seen=set()",
        "while time.time()<end:",
        "  r,_,_=select.select([s,sys.stdin],[],[],0.5)",
        "  if sys.stdin in r: break",
        "  if s not in r: continue",
        "  f,a=s.recvfrom(65535)",
        "  if a[2]==socket.PACKET_OUTGOING: continue",
        "  if f[12:14]==b'\\x08\\x00': seen.add(socket.inet_ntoa(f[26:30]))",
        // The control packet (UDP to port 7, sent last) says everything sent before it has passed.
        "  if f[12:14]==b'\\x08\\x00' and f[23]==17 and f[36:38]==b'\\x00\\x07': print('control',flush=True)",
        "  if f[12:14]==b'\\x86\\xdd': seen.add(socket.inet_ntop(socket.AF_INET6,f[22:38]))",
        "print('seen',' '.join(sorted(seen)))",
      ].join("\n"),
    ]);
    let out = "";
    capture.stdout.on("data", (d) => {
      out += d;
    });
    const done = new Promise((r) => capture.on("exit", r));
    await waitFor(
      "the capture to start",
      () => out,
      (text) => text.includes("ready"),
      { everyMs: 25 },
    );
    const dst = "192.0.2.77";
    const r = await inside(
      py([
        "import socket",
        "def tryit(name,f):",
        '  try: f(); print(name,"SENT")',
        '  except OSError as e: print(name,"refused",e.strerror)',
        "def freebind():",
        '  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.setsockopt(socket.SOL_IP,15,1);s.bind(("10.9.9.9",0));s.sendto(b"x",("' +
          dst +
          '",9))',
        "def transparent():",
        "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.setsockopt(socket.SOL_IP,19,1)",
        "def raw():",
        "  socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)",
        "def packet():",
        "  socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))",
        "def freebind6():",
        '  s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.setsockopt(socket.IPPROTO_IPV6,78,1);s.bind(("fe80::dead",0,0,socket.if_nametoindex("eth0")));s.sendto(b"x",("ff02::1",9,0,socket.if_nametoindex("eth0")))',
        'for n,f in [("freebind",freebind),("transparent",transparent),("raw",raw),("packet",packet),("freebind6",freebind6)]: tryit(n,f)',
        // The control: a packet from its own address is seen by the capture.
        `socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b"x",("${dst}",7))`,
      ]),
    );
    // The packets leave in order: once the control has crossed the veth, so has every earlier one.
    await waitFor(
      "the capture to see the control packet",
      () => out,
      (o) => o.includes("control"),
      {
        timeoutMs: 20_000,
      },
    );
    capture.stdin.end();
    await done;
    // Outside first: what reached the host end of the veth (its own link-local aside).
    const sources = (out.split("seen")[1] ?? "").trim().split(" ").filter(Boolean);
    expect(sources, "the capture saw the sandbox's own packet").toContain(own);
    expect(sources, r.stdout).not.toContain("fe80::dead");
    expect(sources.filter((a) => a !== own && !a.startsWith("fe80:") && a !== "::")).toEqual([]);
    // Inside: every attempt refused (with IPv6 off on eth0, the IPv6 one cannot even bind).
    expect(r.stdout).not.toContain("SENT");
    expect(r.stdout.match(/ refused /g)).toHaveLength(5);
  });
});
