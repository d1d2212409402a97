// Docker driver volumes: an ext4 image of the volume's size, loop-mounted on the host and bound
// into each container using it. The size holds, two containers share the files, delete leaves
// no mount or image.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { SandboxSpec } from "@berth/core";
import { DockerRuntime } from "@berth/runtime-docker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";
import { shIn } from "../support/runtime-sh.js";

const docker = await startTestDocker();
if ("reason" in docker) console.log(`docker volumes skipped: ${docker.reason}`);

describe.skipIf("reason" in docker)("docker driver volumes", () => {
  const engine = docker as TestDocker;
  const dir = mkdtempSync("/tmp/berth-dv-");
  const tag = Math.random().toString(36).slice(2, 8);
  const volume = `vo${tag}${"0".repeat(10)}`;
  let runtime: DockerRuntime;
  let n = 0;
  const made: string[] = [];

  const create = async () => {
    const spec: SandboxSpec = {
      id: `dv-${tag}-${n++}`,
      template: "default",
      resources: { cpus: 1, memoryMiB: 256, diskMiB: 256, pids: 128 },
      network: { egress: "none", allow: [] },
      env: {},
      volumes: [{ id: volume, mountPath: "/data" }],
    };
    made.push(spec.id);
    await runtime.create(spec);
    return spec.id;
  };
  const sh = async (id: string, script: string) => (await shIn(runtime, id, script)).stdout.trim();
  const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").includes(volume);

  beforeAll(async () => {
    runtime = new DockerRuntime({ dataDir: dir, socketPath: engine.socketPath });
    await runtime.start();
  });

  afterAll(async () => {
    for (const id of made) await runtime?.destroy(id).catch(() => {});
    await runtime?.purgeHostState();
    await runtime?.close();
    rmSync(dir, { recursive: true, force: true });
    await engine.stop();
  });

  it("holds a volume to its size, shares it between containers, and removes it whole", async () => {
    await runtime.createVolume(volume, 16);
    expect(mounted()).toBe(true);
    const a = await create();
    const b = await create();
    // Writing past 16 MiB fails inside the container; the host's disk is not what fills up.
    const big = await sh(a, "dd if=/dev/zero of=/data/big bs=1M count=40 2>&1; echo rc=$?");
    expect(big).toMatch(/No space left on device/);
    expect(big).not.toMatch(/rc=0$/);
    expect(await runtime.volumeUsage(volume)).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(await sh(a, "rm /data/big && echo shared > /data/note && id -u")).toBe("1000");
    expect(await sh(b, "cat /data/note")).toBe("shared");
    expect(await runtime.volumeUsage(volume)).toBeGreaterThan(0);

    // A new runtime (a server restart) binds the same volume into a new container.
    await runtime.close();
    runtime = new DockerRuntime({ dataDir: dir, socketPath: engine.socketPath });
    await runtime.start();
    const c = await create();
    expect(await sh(c, "cat /data/note")).toBe("shared");

    for (const id of [a, b, c]) await runtime.destroy(id);
    await runtime.deleteVolume(volume);
    expect(mounted()).toBe(false);
    expect(existsSync(`${dir}/runtime-docker/volumes/${volume}.img`)).toBe(false);
    await expect(runtime.volumeUsage(volume)).rejects.toThrow(/volume/);
  });
});
