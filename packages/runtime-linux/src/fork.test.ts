import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { InvalidRequestError, NotFoundError, type Resources, type SandboxSpec } from "@berth/core";
import { type ExitStatus, SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinuxRuntime } from "./runtime.js";

// Real runc, loop mounts, the disk store's btrfs image (the test data dir is on ext4 here) or the
// data dir's own reflinks: needs root, like the server.
const root = process.getuid?.() === 0;
const dataDir = mkdtempSync("/tmp/berth-fork-");
const sandboxes = join(dataDir, "runtime/sandboxes");
const tag = Math.random().toString(36).slice(2, 8);
const SRC = `fk-src-${tag}`;
let rt: LinuxRuntime;
const made = new Set<string>();

function spec(id: string, o: Partial<SandboxSpec> = {}, resources: Partial<Resources> = {}): SandboxSpec {
  return {
    id,
    template: "default",
    resources: { cpus: 1, memoryMiB: 256, diskMiB: 128, pids: 128, ...resources },
    network: { egress: "none", allow: [] },
    env: {},
    ...o,
  };
}

async function fork(id: string, from = SRC, resources: Partial<Resources> = {}) {
  made.add(id);
  return rt.create(spec(id, { fromSandbox: from }, resources));
}

async function sh(id: string, script: string): Promise<{ stdout: string } & ExitStatus> {
  const proc = await new SupervisorClient(() => rt.connect(id)).exec({
    cmd: ["sh", "-c", script],
    env: { PATH: "/usr/bin:/bin" },
  });
  let stdout = "";
  proc.on("stdout", (b: Buffer) => {
    stdout += b.toString();
  });
  const status = await new Promise<ExitStatus>((resolve, reject) => {
    proc.on("exit", resolve);
    proc.on("error", reject);
  });
  return { stdout, ...status };
}

/** What a sandbox id still has on the host: its dir, mounts and loop devices. */
function traces(id: string) {
  const dir = join(sandboxes, id);
  return {
    dir: existsSync(dir),
    mounts: readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(dir)).length,
    loops: execFileSync("losetup", ["-a"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(dir)).length,
  };
}
const GONE = { dir: false, mounts: 0, loops: 0 };

/** The checksum of the source's files, as each copy must show it. */
const SUM = "cd /workspace && sha256sum big small";

describe.skipIf(!root)("fork: a sandbox's disk copied (copy-on-write)", () => {
  let sum = "";

  beforeAll(async () => {
    rt = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 128 });
    await rt.start();
    made.add(SRC);
    await rt.create(spec(SRC));
    const w = await sh(SRC, "head -c 20000000 /dev/urandom > /workspace/big && echo one > /workspace/small");
    expect(w.exitCode).toBe(0);
    sum = (await sh(SRC, SUM)).stdout;
    // A background process with a record in berth-init's state (on the disk): not a fork's.
    await new SupervisorClient(() => rt.connect(SRC)).spawn({ cmd: ["sleep", "1000"], env: {} });
    expect(sum).toMatch(/big\n.*small\n$/s);
  }, 120_000);

  afterAll(async () => {
    for (const id of made) await rt.destroy(id).catch(() => {});
    await rt.purgeHostState();
    await rt.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps disks on a filesystem that shares blocks: the data dir's own, else a btrfs image of its own", () => {
    const fs = execFileSync("stat", ["-f", "-c", "%T", sandboxes], { encoding: "utf8" }).trim();
    expect(["btrfs", "xfs"]).toContain(fs);
    const dataFs = execFileSync("stat", ["-f", "-c", "%T", dataDir], { encoding: "utf8" }).trim();
    if (!["btrfs", "xfs"].includes(dataFs))
      expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(` ${sandboxes} `);
  });

  it("gives each copy of a running sandbox its files, shares their blocks, and keeps writes apart", async () => {
    const kids = [`fk-a-${tag}`, `fk-b-${tag}`, `fk-c-${tag}`];
    for (const id of kids) await fork(id);
    for (const id of kids) expect((await sh(id, SUM)).stdout).toBe(sum);
    // The source runs on, thawed, and its image's blocks are shared with the copies' (reflinks).
    expect((await rt.inspect(SRC)).state).toBe("running");
    const shared = execFileSync("filefrag", ["-v", join(sandboxes, kids[0] as string, "disk.img")], {
      encoding: "utf8",
    });
    expect(shared).toMatch(/shared/);
    // A write in one copy shows in neither the source nor a sibling, and the other way round.
    const [a, b] = kids as [string, string];
    await sh(a, "echo from-a > /workspace/small && echo new > /workspace/only-a");
    await sh(SRC, "echo from-src > /workspace/only-src");
    expect((await sh(a, "cat /workspace/small /workspace/only-a")).stdout).toBe("from-a\nnew\n");
    for (const other of [SRC, b]) {
      expect((await sh(other, "cat /workspace/small")).stdout).toBe("one\n");
      expect((await sh(other, "test -e /workspace/only-a; echo $?")).stdout).toBe("1\n");
    }
    for (const kid of kids)
      expect((await sh(kid, "test -e /workspace/only-src; echo $?")).stdout).toBe("1\n");
    // The source's background process is the source's: a copy lists none.
    expect((await new SupervisorClient(() => rt.connect(SRC)).processes()).length).toBe(1);
    expect(await new SupervisorClient(() => rt.connect(b)).processes()).toEqual([]);
    for (const id of kids) {
      await rt.destroy(id);
      expect(traces(id)).toEqual(GONE);
    }
  });

  it("copies a paused sandbox (which stays paused) and a hibernated one", async () => {
    await rt.pause(SRC);
    await fork(`fk-p-${tag}`);
    expect((await rt.inspect(SRC)).state).toBe("paused");
    await rt.resume(SRC);
    await rt.hibernate(SRC);
    await fork(`fk-h-${tag}`);
    await rt.wake(SRC);
    for (const id of [`fk-p-${tag}`, `fk-h-${tag}`]) {
      expect((await sh(id, SUM)).stdout).toBe(sum);
      await rt.destroy(id);
    }
  });

  it("leaves nothing of a failed fork, and the source running", async () => {
    // Refused before anything is made: another disk size, an unknown source.
    await expect(fork(`fk-x-${tag}`, SRC, { diskMiB: 256 })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(traces(`fk-x-${tag}`)).toEqual(GONE);
    await expect(fork(`fk-y-${tag}`, `fk-none-${tag}`)).rejects.toBeInstanceOf(NotFoundError);
    expect(traces(`fk-y-${tag}`)).toEqual(GONE);
    // Failing after the copy: 1 MiB of memory, runc sets everything up and the sandbox cannot start.
    await expect(fork(`fk-z-${tag}`, SRC, { memoryMiB: 1 })).rejects.toBeInstanceOf(Error);
    expect(traces(`fk-z-${tag}`)).toEqual(GONE);
    expect((await rt.inspect(SRC)).state).toBe("running");
    expect((await sh(SRC, SUM)).stdout).toBe(sum);
  });

  it("removes the disk store's image on purge once no sandbox is left", async () => {
    await rt.destroy(SRC);
    await rt.purgeHostState();
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(` ${sandboxes} `);
    expect(existsSync(join(dataDir, "runtime/disks/sandboxes.btrfs"))).toBe(false);
  });
});
