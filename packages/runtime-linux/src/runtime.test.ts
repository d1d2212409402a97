import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { ConflictError, NotFoundError, type Resources, type SandboxSpec } from "@berth/core";
import { type ExitStatus, SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinuxRuntime } from "./runtime.js";

// Real runc, real loop mounts and cgroups: needs root, like the server.
const root = process.getuid?.() === 0;
const dataDir = mkdtempSync("/tmp/berth-rt-");
const created = new Set<string>();
// Ids are unique per run: on cgroup v1 `berth/<id>` is shared by every runtime in this cgroup.
const tag = Math.random().toString(36).slice(2, 8);
const A = `rt-a-${tag}`;
const B = `rt-b-${tag}`;
let rt: LinuxRuntime;

function spec(id: string, resources: Partial<Resources> = {}): SandboxSpec {
  return {
    id,
    template: "default",
    resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128, ...resources },
    network: { egress: "none", allow: [] },
    env: { GREETING: "hello" },
  };
}

async function create(id: string, resources: Partial<Resources> = {}) {
  created.add(id);
  return rt.create(spec(id, resources));
}

/** Runs a command through the real supervisor client and collects its output. */
async function execIn(connect: () => Promise<Duplex>, cmd: string[]) {
  const proc = await new SupervisorClient(connect).exec({ cmd, env: { PATH: "/usr/bin:/bin" } });
  const out = { stdout: "", stderr: "", exitCode: null as number | null, signal: null as string | null };
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

const sh = (id: string, script: string) => execIn(() => rt.connect(id), ["sh", "-c", script]);

/** Everything a sandbox can leave behind on the host. */
function traces(id: string, info: { pid: number; cgroupPaths: Record<string, string> }) {
  const dir = join(dataDir, "runtime/sandboxes", id);
  return {
    process:
      existsSync(`/proc/${info.pid}`) && !readFileSync(`/proc/${info.pid}/stat`, "utf8").includes(") Z "),
    mounts: readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(dir)),
    loops: execFileSync("losetup", ["-a"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(dir)),
    cgroups: [...Object.values(info.cgroupPaths).filter((p) => existsSync(p)), ...cgroupDirsNamed(id)],
    dir: existsSync(dir),
    runcState: existsSync(join(dataDir, "runtime/runc", id)),
  };
}
/** Any cgroup dir named after the sandbox, in any hierarchy (v1) or the unified tree (v2). */
function cgroupDirsNamed(id: string): string[] {
  const out = execFileSync(
    "sh",
    ["-c", `find /sys/fs/cgroup -maxdepth 8 -type d -name '${id}' 2>/dev/null; true`],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean);
}
const NOTHING = { process: false, mounts: [], loops: [], cgroups: [], dir: false, runcState: false };

describe.skipIf(!root)("LinuxRuntime (real runc)", () => {
  beforeAll(async () => {
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
  });

  it("starts a sandbox whose supervisor runs as uid 1000 with the sandbox id as hostname", async () => {
    await create(A);
    const r = await sh(A, "id -u; id -G; hostname; node --version; pwd");
    expect(r.exitCode).toBe(0);
    const [uid, groups, hostname, node, cwd] = r.stdout.trim().split("\n");
    expect({ uid, groups, hostname, cwd }).toEqual({
      uid: "1000",
      groups: "1000",
      hostname: A,
      cwd: "/workspace",
    });
    expect(node).toMatch(/^v\d+\./);
    expect(await rt.inspect(A)).toEqual({ state: "running", oomKills: 0 });
    expect(await rt.list()).toContain(A);
  });

  it("refuses a second sandbox with the same id", async () => {
    await expect(rt.create(spec(A))).rejects.toBeInstanceOf(ConflictError);
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
      "ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/1/cmdline; echo; ls /sys/class/net",
    );
    const [count, init, nets] = r.stdout.trim().split("\n");
    expect(Number(count)).toBeLessThan(10);
    expect(init).toMatch(/^\/\.berth\/init\b/);
    expect(nets).toBe("lo");
    // The server's pid is not visible: pid numbers are the sandbox's own.
    const mine = await sh(A, `test -e /proc/${process.pid}/cmdline && cat /proc/${process.pid}/cmdline`);
    expect(mine.stdout).not.toMatch(/node|vitest/);
  });

  it("keeps sandboxes' files apart and hides the host's data dir", async () => {
    await create(B);
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

  it("OOM-kills a process past the memory limit and counts it", async () => {
    await create(`rt-mem-${tag}`, { memoryMiB: 64 });
    // tail keeps one ever-growing "line" of /dev/zero in memory.
    const r = await sh(`rt-mem-${tag}`, "exec tail /dev/zero");
    expect(r.signal === "SIGKILL" || r.exitCode === 137).toBe(true);
    expect((await rt.inspect(`rt-mem-${tag}`)).oomKills).toBeGreaterThan(0);
    expect((await sh(`rt-mem-${tag}`, "echo alive")).stdout).toBe("alive\n");
  });

  it("stops a fork bomb at the pids limit; the sandbox still answers afterwards", async () => {
    await create(`rt-pids-${tag}`, { pids: 48 });
    // bash, not dash: dash runs this function without forking a subshell per call.
    const bomb = execIn(
      () => rt.connect(`rt-pids-${tag}`),
      ["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 3"],
    );
    // The bomb fills the pids budget quickly; it never gets past it.
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, (await rt.stats(`rt-pids-${tag}`)).pids);
    }
    expect(peak).toBeLessThanOrEqual(48);
    expect(peak).toBeGreaterThan(40);
    await bomb;
    let answer = "";
    for (let i = 0; i < 50 && answer !== "ok\n"; i++) {
      answer = (await sh(`rt-pids-${tag}`, "echo ok").catch(() => ({ stdout: "" }))).stdout;
      if (answer !== "ok\n") await new Promise((r) => setTimeout(r, 200));
    }
    expect(answer).toBe("ok\n");
    expect(execFileSync("sh", ["-c", "echo host-ok"], { encoding: "utf8" })).toBe("host-ok\n");
  });

  it("stops writes at the disk size with ENOSPC", async () => {
    await create(`rt-disk-${tag}`, { diskMiB: 64 });
    const r = await sh(
      `rt-disk-${tag}`,
      "dd if=/dev/zero of=/workspace/fill bs=1M count=200 2>&1; echo dd=$?; du -m /workspace/fill | cut -f1",
    );
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.stdout).toMatch(/dd=1/);
    const mib = Number(r.stdout.trim().split("\n").at(-1));
    expect(mib).toBeGreaterThan(40);
    expect(mib).toBeLessThanOrEqual(64);
    const stats = await rt.stats(`rt-disk-${tag}`);
    expect(stats.diskBytes).toBeGreaterThan(40 * 1024 * 1024);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuSeconds).toBeGreaterThan(0);
  });

  it("destroy leaves no process, mount, loop device, cgroup or directory behind", async () => {
    const info = (await create(`rt-gone-${tag}`)) as { pid: number; cgroupPaths: Record<string, string> };
    expect(traces(`rt-gone-${tag}`, info)).toMatchObject({ process: true, dir: true, runcState: true });
    expect(traces(`rt-gone-${tag}`, info).mounts.length).toBeGreaterThanOrEqual(2);
    expect(traces(`rt-gone-${tag}`, info).cgroups.length).toBeGreaterThan(0);
    await rt.destroy(`rt-gone-${tag}`);
    expect(traces(`rt-gone-${tag}`, info)).toEqual(NOTHING);
    expect(await rt.inspect(`rt-gone-${tag}`)).toEqual({ state: "missing", oomKills: 0 });
    expect(await rt.list()).not.toContain(`rt-gone-${tag}`);
    await rt.destroy(`rt-gone-${tag}`); // idempotent
    await expect(rt.stats(`rt-gone-${tag}`)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("undoes every step when create fails", async () => {
    // 1 MiB of memory: runc sets up everything, then the sandbox cannot start.
    const err = await create(`rt-fail-${tag}`, { memoryMiB: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).not.toContain(dataDir); // no host paths for clients
    expect(traces(`rt-fail-${tag}`, { pid: 0, cgroupPaths: {} })).toEqual({
      ...NOTHING,
      process: existsSync("/proc/0"),
    });
    await expect(rt.create({ ...spec(`rt-tpl-${tag}`), template: "nope" })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(existsSync(join(dataDir, `runtime/sandboxes/rt-tpl-${tag}`))).toBe(false);
  });

  it("a new runtime over the same data dir finds running sandboxes after a restart", async () => {
    await rt.poolReady();
    await rt.close();
    // The pool's ready disks are unmounted on close but kept for the next start.
    const pool = join(dataDir, "runtime/disks/pool");
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
  });
});
