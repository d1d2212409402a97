// Root sandboxes on real runc: uid 0 inside a user namespace of their own, mapped to an
// unprivileged host range, with the template read as root's through an idmapped mount.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { SandboxSpec } from "@berth/core";
import { type ExitStatus, type SandboxUserName, SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ROOT_ID_BASE } from "./root-host.js";
import { LinuxRuntime } from "./runtime.js";

const isRoot = process.getuid?.() === 0;
const dataDir = mkdtempSync("/tmp/berth-rootsb-");
const tag = Math.random().toString(36).slice(2, 8);
const R = `rs-r-${tag}`;
const BASE = DEFAULT_ROOT_ID_BASE;
let rt: LinuxRuntime;

function spec(id: string, root: boolean): SandboxSpec {
  return {
    id,
    template: "default",
    resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
    network: { egress: "none", allow: [] },
    env: {},
    ...(root ? { root: true } : {}),
  };
}

/** `sh -c script` in sandbox `id` as `user`, through the real supervisor client. */
async function sh(id: string, script: string, user: SandboxUserName = "user") {
  const proc = await new SupervisorClient(() => rt.connect(id), { user }).exec({
    cmd: ["sh", "-c", script],
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
  });
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
const asRoot = (id: string, script: string) => sh(id, script, "root");

/** Host uid and gid of a process, from /proc/<pid>/status (real, effective, saved, fs). */
function hostIds(pid: number): { uid: string; gid: string } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    uid: /^Uid:\s+(.*)$/m.exec(status)?.[1]?.trim() ?? "",
    gid: /^Gid:\s+(.*)$/m.exec(status)?.[1]?.trim() ?? "",
  };
}

describe.skipIf(!isRoot)("root sandboxes (real runc, user namespace, idmapped mounts)", () => {
  let initPid = 0;
  let hostSleep: ChildProcess | undefined;

  beforeAll(async () => {
    rt = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64 });
    await rt.start();
    const t0 = performance.now();
    initPid = ((await rt.create(spec(R, true))) as { pid: number }).pid;
    console.log(`root sandbox create: ${Math.round(performance.now() - t0)} ms`);
  });

  afterAll(async () => {
    hostSleep?.kill("SIGKILL");
    for (const id of await rt.list()) await rt.destroy(id).catch(() => {});
    await rt.purgeHostState();
    await rt.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs berth-init as uid 0 of its own user namespace, an unprivileged id on the host", async () => {
    expect(hostIds(initPid)).toEqual({
      uid: `${BASE}\t${BASE}\t${BASE}\t${BASE}`,
      gid: `${BASE}\t${BASE}\t${BASE}\t${BASE}`,
    });
    expect(readFileSync(`/proc/${initPid}/uid_map`, "utf8").trim().split(/\s+/)).toEqual([
      "0",
      String(BASE),
      "65536",
    ]);
    expect(execFileSync("readlink", [`/proc/${initPid}/ns/user`], { encoding: "utf8" })).not.toBe(
      execFileSync("readlink", ["/proc/self/ns/user"], { encoding: "utf8" }),
    );
  });

  it("runs commands as user (uid 1000, no capabilities) unless they ask for root", async () => {
    const user = await sh(R, "id -u; id -g; grep -E '^Cap(Eff|Prm)' /proc/self/status; echo x > /etc/x");
    expect(user.stdout).toMatch(/^1000\n1000\nCapPrm:\s+0{16}\nCapEff:\s+0{16}\n$/);
    expect(user.stderr).toMatch(/Permission denied/);
    const root = await asRoot(R, "id -u; id -g; grep NoNewPrivs /proc/self/status");
    expect(root.stdout).toMatch(/^0\n0\nNoNewPrivs:\s+1\n$/);
  });

  it("shows the template's files as root's and lets root write system dirs of its own root filesystem", async () => {
    const r = await asRoot(
      R,
      "stat -c '%u:%g %n' / /etc /etc/passwd /usr/bin/env /workspace; echo hi > /etc/berth-root && mkdir -p /opt/tool /var/lib/x && touch /root/.profile-x /usr-less && chown 1000:1000 /opt/tool && stat -c '%u %n' /opt/tool && cat /etc/berth-root",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      "0:0 /\n0:0 /etc\n0:0 /etc/passwd\n0:0 /usr/bin/env\n1000:1000 /workspace\n1000 /opt/tool\nhi\n",
    );
    // The host's /usr stays read-only, for root too.
    expect((await asRoot(R, "touch /usr/bin/evil")).stderr).toMatch(/Read-only file system/);
  });

  it("stores what root writes under the sandbox's host range, never as host root", async () => {
    await asRoot(R, "cp /bin/sh /tmp/suid-sh && chmod 4755 /tmp/suid-sh && touch /etc/owned-by-root");
    const upper = join(dataDir, "runtime/sandboxes", R, "disk/upper");
    const owners = execFileSync("find", [upper, "-printf", "%U %G %p\\n"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    const low = owners.filter((l) => Number(l.split(" ")[0]) < BASE || Number(l.split(" ")[1]) < BASE);
    expect(low, owners.join("\n")).toEqual([]);
    const suid = execFileSync("stat", ["-c", "%u %a", join(upper, "tmp/suid-sh")], { encoding: "utf8" });
    expect(suid.trim()).toBe(`${BASE} 4755`);
  });

  it("cannot see or signal host processes, and cannot reach the data dir or mount host paths", async () => {
    hostSleep = spawn("sleep", ["300"], { stdio: "ignore" });
    const hostPid = hostSleep.pid as number;
    // kill -1 as root ends every process of the sandbox but init, this command's too.
    await asRoot(R, `kill -9 ${hostPid}; kill -9 -1`).catch(() => {});
    expect(existsSync(`/proc/${hostPid}`)).toBe(true);
    expect(hostSleep.exitCode).toBe(null);
    const r = await asRoot(
      R,
      `ls /proc | grep -cE '^[0-9]+$'; ls ${dataDir}; grep -c '${dataDir}' /proc/self/mountinfo; mount --bind /proc/1/root /mnt; mount -t proc proc /mnt; echo 1 > /proc/sys/vm/drop_caches`,
    );
    const lines = r.stdout.split("\n");
    expect(Number(lines[0])).toBeLessThan(10);
    expect(lines[1]).toBe("0");
    expect(r.stderr).toMatch(/No such file or directory/);
    expect(r.stderr).toMatch(/permission denied/i);
    expect(r.stderr).toMatch(/drop_caches: Read-only file system/);
    expect(r.stderr).not.toMatch(/mount: \/mnt: .*mounted/);
  });

  it("reads a boot id of its own that root cannot change or unmount", async () => {
    const hostBootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const r = await asRoot(
      R,
      "id=/proc/sys/kernel/random/boot_id; cat $id; echo x > $id; umount $id; cat $id",
    );
    const [first, after] = r.stdout.trim().split("\n");
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(first).not.toBe(hostBootId);
    expect(after).toBe(first);
    expect(r.stderr).toMatch(/Permission denied|Read-only/i);
    expect(r.stderr).toMatch(/umount: .*(permission denied|must be superuser|not mounted)/i);
  });

  it("cannot raise its cgroup limits", async () => {
    const r = await asRoot(
      R,
      "mount -t cgroup -o memory cgroup /mnt; mount -t cgroup2 none /mnt; echo -1 > /sys/fs/cgroup/memory/memory.limit_in_bytes; echo max > /sys/fs/cgroup/pids.max",
    );
    expect(r.stderr).toMatch(/permission denied[\s\S]*permission denied[\s\S]*(nonexistent|Read-only)/i);
    const info =
      (await rt.stats(R)) &&
      JSON.parse(readFileSync(join(dataDir, "runtime/sandboxes", R, "info.json"), "utf8"));
    const paths = info.cgroupPaths as Record<string, string>;
    const limit = paths.memory
      ? readFileSync(join(paths.memory, "memory.limit_in_bytes"), "utf8")
      : readFileSync(join(paths[""] ?? "", "memory.max"), "utf8");
    expect(limit.trim()).toBe(String(256 * 1024 * 1024));
  });

  it("keeps root and its files across hibernate and wake", async () => {
    await rt.hibernate(R);
    initPid = ((await rt.wake(R)) as { pid: number }).pid;
    expect(hostIds(initPid).uid.split("\t")[0]).toBe(String(BASE));
    const r = await asRoot(R, "cat /etc/berth-root; stat -c %u /etc/passwd; id -u");
    expect(r.stdout).toBe("hi\n0\n0\n");
  });

  it("refuses root in a sandbox made without it, and leaves a root sandbox without a trace", async () => {
    const plain = `rs-p-${tag}`;
    await rt.create(spec(plain, false));
    await expect(asRoot(plain, "id -u")).rejects.toMatchObject({ code: "forbidden" });
    expect((await sh(plain, "id -u")).stdout).toBe("1000\n");
    await rt.destroy(plain);
    await rt.destroy(R);
    const dir = join(dataDir, "runtime/sandboxes", R);
    expect(readFileSync("/proc/self/mountinfo", "utf8").includes(dir)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it("answers root_unavailable, leaving nothing, when the host cannot make idmapped mounts", async () => {
    const other = mkdtempSync("/tmp/berth-rootsb-off-");
    const off = new LinuxRuntime({
      dataDir: other,
      ociRuntime: "auto",
      diskPoolSize: 0,
      defaultDiskMiB: 64,
      idmapBinary: "/bin/false",
    });
    try {
      await off.start();
      expect(await off.rootUnavailable()).toMatch(/idmapped mounts/);
      await expect(off.create(spec(`rs-x-${tag}`, true))).rejects.toMatchObject({
        code: "root_unavailable",
        status: 501,
      });
      // (`.pool` holds the ready disks of the pool, not a sandbox)
      expect(readdirSync(join(other, "runtime/sandboxes")).filter((n) => n !== ".pool")).toEqual([]);
    } finally {
      await off.close();
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("answers root_unavailable naming the directory above the data dir that the sandbox's id cannot pass", async () => {
    const closed = mkdtempSync("/tmp/berth-rootsb-closed-"); // mode 0700, as mkdtemp makes it
    const rt2 = new LinuxRuntime({
      dataDir: join(closed, "data"),
      ociRuntime: "auto",
      diskPoolSize: 0,
      defaultDiskMiB: 64,
    });
    try {
      await rt2.start();
      expect(await rt2.rootUnavailable()).toMatch(
        new RegExp(`^${closed} \\(above the data dir\\) is not searchable .*chmod o\\+x ${closed}`),
      );
    } finally {
      await rt2.close();
      await rt2.purgeHostState().catch(() => {});
      rmSync(closed, { recursive: true, force: true });
    }
  });

  it("leaves no idmapped view mounted when it closes with no sandbox left", async () => {
    const own = mkdtempSync("/tmp/berth-rootsb-close-");
    const rt3 = new LinuxRuntime({ dataDir: own, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64 });
    const mountedHere = () => readFileSync("/proc/self/mountinfo", "utf8").split(own).length - 1;
    try {
      await rt3.start();
      await rt3.create(spec(`rs-c-${tag}`, true));
      expect(mountedHere()).toBeGreaterThan(0);
      await rt3.destroy(`rs-c-${tag}`);
      await rt3.close();
      expect(mountedHere()).toBe(0);
    } finally {
      await rt3.purgeHostState().catch(() => {});
      rmSync(own, { recursive: true, force: true });
    }
  });
});
