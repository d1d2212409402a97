import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConflictError, NotFoundError, type Resources, SandboxError, type SandboxSpec } from "@berth/core";
import { type ExitStatus, SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinuxRuntime } from "./runtime.js";

// Real runc, real loop mounts and cgroups, the real berth-init: needs root, like the server.
const root = process.getuid?.() === 0;
const dataDir = mkdtempSync("/tmp/berth-rt-");
const created = new Set<string>();
// Ids are unique per run: on cgroup v1 `berth/<id>` is shared by every runtime in this cgroup.
const tag = Math.random().toString(36).slice(2, 8);
const A = `rt-a-${tag}`;
const B = `rt-b-${tag}`;
const MiB = 1024 * 1024;
const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
let rt: LinuxRuntime;

type Info = { pid: number; cgroupPaths: Record<string, string> };

function spec(id: string, resources: Partial<Resources> = {}): SandboxSpec {
  return {
    id,
    template: "default",
    resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128, ...resources },
    network: { egress: "none", allow: [] },
    env: { GREETING: "hello" },
  };
}

async function create(id: string, resources: Partial<Resources> = {}): Promise<Info> {
  created.add(id);
  return (await rt.create(spec(id, resources))) as unknown as Info;
}

/** Runs a command through the real supervisor client and collects its output. */
async function exec(id: string, cmd: string[]) {
  const proc = await new SupervisorClient(() => rt.connect(id)).exec({ cmd, env: { PATH: "/usr/bin:/bin" } });
  const out = { stdout: "", stderr: "" };
  proc.on("stdout", (b: Buffer) => {
    out.stdout += b.toString();
  });
  proc.on("stderr", (b: Buffer) => {
    out.stderr += b.toString();
  });
  const status = await new Promise<ExitStatus>((resolve, reject) => {
    proc.on("exit", resolve);
    proc.on("error", reject);
  });
  return { ...out, ...status };
}

const sh = (id: string, script: string) => exec(id, ["sh", "-c", script]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `echo ok` until the sandbox answers (a limit just hit may take a moment to clear). */
async function answers(id: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await sh(id, "echo ok").catch(() => ({ stdout: "" }))).stdout === "ok\n") return true;
    await sleep(200);
  }
  return false;
}

/** A cgroup file of the sandbox; v1 names the controller's hierarchy, v2 has one dir. */
function cg(info: Info, controller: string, file: string): string {
  const dir = v2 ? info.cgroupPaths[""] : info.cgroupPaths[controller];
  return readFileSync(join(dir ?? "/nonexistent", file), "utf8").trim();
}
const cgKey = (info: Info, controller: string, file: string, key: string) =>
  Number(new RegExp(`^${key} (\\d+)$`, "m").exec(cg(info, controller, file))?.[1] ?? Number.NaN);

/** A running (not zombie) host process in a cgroup of this sandbox (a reused pid is not). */
function livesIn(pid: number | string, id: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X" && readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(id);
  } catch {
    return false; // gone
  }
}

/** Everything a sandbox can leave behind on the host. */
function traces(id: string, info: Info) {
  const dir = join(dataDir, "runtime/sandboxes", id);
  return {
    process: info.pid > 0 && livesIn(info.pid, id),
    mounts: readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(dir)),
    loops: execFileSync("losetup", ["-a"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(dir)),
    cgroups: [...Object.values(info.cgroupPaths).filter((p) => existsSync(p)), ...cgroupDirs(id)],
    dir: existsSync(dir),
    runcState: existsSync(join(dataDir, "runtime/runc", id)),
  };
}
/** Cgroup dirs with this name, in every v1 hierarchy and the unified (v2) tree. */
function cgroupDirs(name: string): string[] {
  const out = execFileSync(
    "sh",
    ["-c", `find /sys/fs/cgroup -maxdepth 8 -type d -name '${name}' 2>/dev/null; true`],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean);
}
const NOTHING = { process: false, mounts: [], loops: [], cgroups: [], dir: false, runcState: false };

describe.skipIf(!root)("LinuxRuntime (real runc, real berth-init)", () => {
  /** The `berth` parent cgroups that were there before: the ones this run made are removed after. */
  let berthCgroupsBefore: string[] = [];
  const infos: Info[] = [];

  beforeAll(async () => {
    berthCgroupsBefore = cgroupDirs("berth");
    rt = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 1, defaultDiskMiB: 64 });
    await rt.start();
  });

  afterAll(async () => {
    // Clean up even when a test failed half-way, with a fresh instance if `rt` was closed.
    const cleaner = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64 });
    await rt?.close();
    await cleaner.start();
    for (const id of new Set([...created, ...(await cleaner.list())]))
      await cleaner.destroy(id).catch(() => {});
    await cleaner.close();
    execFileSync("sh", [
      "-c",
      `grep -q ' ${dataDir}/' /proc/self/mountinfo && umount -R ${dataDir}/runtime/*/* 2>/dev/null; true`,
    ]);
    rmSync(dataDir, { recursive: true, force: true });
    // runc leaves the (empty) `berth` parent in each hierarchy; the server keeps it, a test should not.
    const parents = new Set(infos.flatMap((i) => Object.values(i.cgroupPaths).map((p) => dirname(p))));
    for (const p of parents)
      if (!berthCgroupsBefore.includes(p))
        try {
          rmdirSync(p);
        } catch {} // not empty: another runtime in this cgroup has sandboxes
  });

  it("runs berth-init as pid 1, uid 1000, hostname = id, in /workspace with HOME /home/user", async () => {
    infos.push(await create(A));
    const r = await sh(
      A,
      'id -u; id -G; hostname; pwd; echo "$HOME"; stat -c %u:%g /workspace "$HOME"; tr "\\0" " " </proc/1/cmdline; echo; node --version',
    );
    expect(r.exitCode).toBe(0);
    const [uid, groups, hostname, cwd, home, workspaceOwner, homeOwner, init, node] = r.stdout
      .trim()
      .split("\n");
    expect({ uid, groups, hostname, cwd, home, workspaceOwner, homeOwner, init: init?.trim() }).toEqual({
      uid: "1000",
      groups: "1000",
      hostname: A,
      cwd: "/workspace",
      home: "/home/user",
      workspaceOwner: "1000:1000",
      homeOwner: "1000:1000",
      init: "/.berth/init",
    });
    expect(node).toMatch(/^v\d+\./);
    expect((await sh(A, "touch ~/.x /workspace/.x && echo writable")).stdout).toBe("writable\n");
    expect(await rt.inspect(A)).toEqual({ state: "running", oomKills: 0 });
    expect(await rt.list()).toContain(A);
  });

  it("refuses a second sandbox with the same id", async () => {
    await expect(rt.create(spec(A))).rejects.toBeInstanceOf(ConflictError);
  });

  it("writes the limits into the sandbox's own cgroups, below the server's, and hides them inside", async () => {
    const info = infos[0] as Info;
    expect(Number(cg(info, "pids", "pids.max"))).toBe(128);
    if (v2) {
      expect(Number(cg(info, "memory", "memory.max"))).toBe(256 * MiB);
      expect(Number(cg(info, "memory", "memory.swap.max"))).toBe(0);
      expect(cg(info, "cpu", "cpu.max")).toBe("100000 100000");
    } else {
      expect(Number(cg(info, "memory", "memory.limit_in_bytes"))).toBe(256 * MiB);
      expect(Number(cg(info, "memory", "memory.memsw.limit_in_bytes"))).toBe(256 * MiB);
      expect(Number(cg(info, "cpu", "cpu.cfs_quota_us"))).toBe(100_000);
      // runc puts it under the caller's own cgroup in each hierarchy, never at the top.
      const own = /^\d+:memory:(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1] ?? "";
      expect(info.cgroupPaths.memory).toBe(join("/sys/fs/cgroup/memory", own, "berth", A));
    }
    // Its init is in that cgroup, and inside, the cgroup namespace shows it as the root.
    expect(cg(info, "pids", "cgroup.procs").split("\n")).toContain(String(info.pid));
    const inside = (await sh(A, "cat /proc/self/cgroup")).stdout.trim().split("\n");
    expect(inside.length).toBeGreaterThan(0);
    for (const line of inside) expect(line).toMatch(/:\/$/);
  });

  it("keeps the host's /usr read-only and gives no privileges", async () => {
    const r = await sh(
      A,
      "touch /usr/x 2>&1; echo touch=$?; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status; unshare -U true 2>&1; echo unshare=$?",
    );
    expect(r.stdout).toMatch(/Read-only file system/);
    expect(r.stdout).toMatch(/touch=1/);
    for (const cap of ["CapEff", "CapPrm", "CapBnd"])
      expect(r.stdout).toMatch(new RegExp(`${cap}:\\s+0000000000000000`));
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.stdout).not.toMatch(/unshare=0/);
  });

  it("shows the sandbox only its own processes and only loopback networking", async () => {
    const r = await sh(
      A,
      "ps -e -o pid=,user=,comm=; echo --; ls /proc | grep -cE '^[0-9]+$'; ls /sys/class/net",
    );
    const [ps = "", rest = ""] = r.stdout.split("--\n");
    const procs = ps
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/));
    // berth-init, this shell, ps: nothing of the host's (which has hundreds and runs node).
    expect(procs[0]).toEqual(["1", "user", "init"]);
    expect(procs.length).toBeLessThan(8);
    for (const [pid, user, comm] of procs) {
      expect(Number(pid)).toBeLessThan(1000);
      expect(user).toBe("user");
      expect(comm).not.toMatch(/node|vitest|runc/);
    }
    const [count, nets] = rest.trim().split("\n");
    expect(Number(count)).toBeLessThan(8);
    expect(nets).toBe("lo");
    const mine = await sh(A, `cat /proc/${process.pid}/cmdline 2>/dev/null; true`);
    expect(mine.stdout).not.toMatch(/node|vitest/);
  });

  it("keeps sandboxes' files apart and hides the host's data dir", async () => {
    infos.push(await create(B));
    const w = await sh(A, "echo top-secret > /workspace/secret-a && ls /workspace");
    expect(w.stdout).toContain("secret-a");
    const r = await sh(
      B,
      `ls /workspace; find / -xdev -name 'secret-a' 2>/dev/null; ls ${dataDir} 2>&1; echo ls=$?`,
    );
    expect(r.stdout).not.toContain("secret-a");
    expect(r.stdout).toMatch(/No such file or directory/);
    // Not even the path: overlayfs shows its options in mountinfo, so they are relative.
    const mounts = await sh(B, "cat /proc/self/mountinfo");
    expect(mounts.stdout).toMatch(/overlay/);
    expect(mounts.stdout).not.toContain(dataDir);
  });

  it("OOM-kills a process past the memory limit, counts it, and keeps the sandbox under the limit", async () => {
    const id = `rt-mem-${tag}`;
    infos.push(await create(id, { memoryMiB: 64 }));
    // tail keeps one ever-growing "line" of /dev/zero in memory.
    const r = await sh(id, "exec tail /dev/zero");
    expect(r.signal === "SIGKILL" || r.exitCode === 137).toBe(true);
    expect((await rt.inspect(id)).oomKills).toBeGreaterThan(0);
    expect((await rt.stats(id)).memoryPeakBytes).toBeLessThanOrEqual(64 * MiB);
    expect((await sh(id, "echo alive")).stdout).toBe("alive\n");
  });

  it("holds a fork bomb at the pids limit without hurting the host; destroy kills every process", async () => {
    const id = `rt-pids-${tag}`;
    const info = await create(id, { pids: 32 });
    infos.push(info);
    expect(cg(info, "pids", "pids.max")).toBe("32");

    // dash gives up at the first failed fork (bash would retry for seconds): the loop stops short.
    const loop = await sh(id, "for i in $(seq 100); do sleep 100 >/dev/null 2>&1 & done; echo started-all");
    expect(loop.stdout).not.toContain("started-all");
    expect(loop.stderr).toMatch(/fork/i);
    expect(loop.exitCode).not.toBe(0);
    // Its sleeps went with its process group when it exited.
    expect(await answers(id)).toBe(true);

    // bash, not dash: dash runs this function without forking a subshell per call.
    const refusedBefore = cgKey(info, "pids", "pids.events", "max");
    const bomb = exec(id, ["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 60"]).catch((e: Error) => e);
    // The kernel's count of refused forks proves the bomb reached the limit, however slow the host.
    let most = 0;
    const started = Date.now();
    while (Date.now() - started < 3000 || cgKey(info, "pids", "pids.events", "max") === refusedBefore) {
      expect(Date.now() - started).toBeLessThan(30_000);
      most = Math.max(most, Number(cg(info, "pids", "pids.current")), (await rt.stats(id)).pids);
      await sleep(50);
    }
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(32);
    if (existsSync(join(info.cgroupPaths.pids ?? info.cgroupPaths[""] ?? "", "pids.peak")))
      expect(Number(cg(info, "pids", "pids.peak"))).toBeLessThanOrEqual(32);
    // The host still forks and answers at once.
    const t = performance.now();
    expect(execFileSync("sh", ["-c", "echo host-ok"], { encoding: "utf8", timeout: 5000 })).toBe("host-ok\n");
    expect(performance.now() - t).toBeLessThan(2000);

    // Destroy with the bomb still going: every one of its processes is gone from the host.
    const hostPids = cg(info, "pids", "cgroup.procs").split("\n").filter(Boolean);
    expect(hostPids.length).toBeGreaterThan(0);
    expect(hostPids.length).toBeLessThanOrEqual(32);
    await rt.destroy(id);
    expect(await bomb).toBeInstanceOf(Error); // the connection went with the sandbox
    expect(traces(id, info)).toEqual(NOTHING);
    expect(hostPids.filter((pid) => livesIn(pid, id))).toEqual([]);
  });

  it("stops writes at the disk size with ENOSPC", async () => {
    const id = `rt-disk-${tag}`;
    infos.push(await create(id, { diskMiB: 64 }));
    const r = await sh(
      id,
      "dd if=/dev/zero of=/workspace/fill bs=1M count=200 2>&1; echo dd=$?; du -m /workspace/fill | cut -f1",
    );
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.stdout).toMatch(/dd=1/);
    const mib = Number(r.stdout.trim().split("\n").at(-1));
    expect(mib).toBeGreaterThan(40);
    expect(mib).toBeLessThanOrEqual(64);
    const stats = await rt.stats(id);
    expect(stats.diskBytes).toBeGreaterThan(40 * MiB);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuSeconds).toBeGreaterThan(0);
    // Deleting frees the space again.
    expect(
      (await sh(id, "rm /workspace/fill && echo more > /workspace/more && cat /workspace/more")).stdout,
    ).toBe("more\n");
  });

  it("destroy leaves no process, mount, loop device, cgroup or directory behind", async () => {
    const id = `rt-gone-${tag}`;
    const info = await create(id);
    infos.push(info);
    const before = traces(id, info);
    expect(before).toMatchObject({ process: true, dir: true, runcState: true });
    expect(before.mounts.length).toBeGreaterThanOrEqual(2); // disk and overlay
    expect(before.loops.length).toBe(1);
    // v1: one dir per hierarchy; v2: one.
    expect(before.cgroups.length).toBeGreaterThanOrEqual(v2 ? 1 : 5);
    await rt.destroy(id);
    expect(traces(id, info)).toEqual(NOTHING);
    expect(await rt.inspect(id)).toEqual({ state: "missing", oomKills: 0 });
    expect(await rt.list()).not.toContain(id);
    await rt.destroy(id); // idempotent
    await expect(rt.stats(id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(rt.connect(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("destroy thaws, kills and removes a paused sandbox that runc no longer knows (an interrupted run's leftover)", async () => {
    const id = `rt-frozen-${tag}`;
    const info = await create(id);
    infos.push(info);
    await rt.pause(id);
    const frozen = v2 ? cg(info, "", "cgroup.freeze") : cg(info, "freezer", "freezer.state");
    expect(frozen).toBe(v2 ? "1" : "FROZEN");
    const pids = (v2 ? cg(info, "", "cgroup.procs") : cg(info, "pids", "cgroup.procs")).split("\n");
    expect(pids).toContain(String(info.pid));
    // What an interrupted run leaves: the processes, frozen, and no runc state to kill them by.
    rmSync(join(dataDir, "runtime/runc", id), { recursive: true, force: true });
    await rt.destroy(id);
    expect(pids.filter((pid) => livesIn(pid, id))).toEqual([]);
    expect(traces(id, info)).toEqual(NOTHING);
  });

  it("undoes every step when create fails", async () => {
    // 1 MiB of memory: runc sets up everything, then the sandbox cannot start.
    const err = await create(`rt-fail-${tag}`, { memoryMiB: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).not.toContain(dataDir); // no host paths for clients
    expect(traces(`rt-fail-${tag}`, { pid: 0, cgroupPaths: {} })).toEqual(NOTHING);
    await expect(rt.create({ ...spec(`rt-tpl-${tag}`), template: "nope" })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(existsSync(join(dataDir, `runtime/sandboxes/rt-tpl-${tag}`))).toBe(false);
  });

  it("refuses to start without a berth-init binary, naming the fix and no host path", async () => {
    const dir = mkdtempSync("/tmp/berth-rt-noinit-");
    try {
      const broken = new LinuxRuntime({
        dataDir: dir,
        ociRuntime: "auto",
        diskPoolSize: 0,
        initBinary: join(dir, "missing-init"),
      });
      const err = await broken.start().catch((e: Error) => e);
      expect(err).toBeInstanceOf(SandboxError);
      expect((err as Error).message).toMatch(/berth-init is not built/);
      expect((err as Error).message).not.toContain(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a new runtime over the same data dir finds, inspects, connects to and destroys running sandboxes", async () => {
    await rt.poolReady();
    await rt.close();
    // The pool's ready disks are unmounted on close but kept for the next start.
    const pool = join(dataDir, "runtime/sandboxes/.pool");
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(pool);
    expect(execFileSync("sh", ["-c", `ls ${pool}/*/disk.img | wc -l`], { encoding: "utf8" }).trim()).toBe(
      "1",
    );
    rt = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 1, defaultDiskMiB: 64 });
    await rt.start();
    expect(await rt.inspect(B)).toEqual({ state: "running", oomKills: 0 });
    expect(await rt.list()).toEqual(expect.arrayContaining([A, B]));
    expect((await sh(B, "hostname")).stdout).toBe(`${B}\n`);
    expect((await sh(A, "cat /workspace/secret-a")).stdout).toBe("top-secret\n");
    expect((await rt.stats(A)).pids).toBeGreaterThan(0);
    const infoB = infos[1] as Info;
    await rt.destroy(B);
    expect(traces(B, infoB)).toEqual(NOTHING);
    expect(await rt.list()).not.toContain(B);
  });
});
