// The Docker driver's `open` egress is filtered as the local driver's is: on the host only the
// given ports, and no other sandbox; `none` has loopback only.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import type { SandboxSpec } from "@berth/core";
import { DockerRuntime } from "@berth/runtime-docker";
import { SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";

const docker = await startTestDocker();
if ("reason" in docker) console.log(`docker network skipped: ${docker.reason}`);

describe.skipIf("reason" in docker)("docker driver egress", () => {
  const engine = docker as TestDocker;
  const dir = mkdtempSync("/tmp/berth-dn-");
  const tag = Math.random().toString(36).slice(2, 8);
  let runtime: DockerRuntime;
  let n = 0;
  const made: string[] = [];
  const listeners: net.Server[] = [];
  const ports: number[] = [];

  const create = async (egress: "none" | "open") => {
    const spec: SandboxSpec = {
      id: `dn-${tag}-${n++}`,
      template: "default",
      resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
      network: { egress, allow: [] },
      env: {},
    };
    made.push(spec.id);
    await runtime.create(spec);
    return spec.id;
  };
  const sh = async (id: string, script: string) => {
    const proc = await new SupervisorClient(() => runtime.connect(id)).exec({
      cmd: ["sh", "-c", script],
      env: { PATH: "/usr/bin:/bin" },
      stdin: false,
    });
    let stdout = "";
    proc.on("stdout", (b: Buffer) => {
      stdout += b.toString();
    });
    await new Promise((resolve, reject) => {
      proc.on("exit", resolve);
      proc.on("error", reject);
    });
    return stdout.trim();
  };
  /** `open` or `closed`: whether a TCP connection from the sandbox to host:port is accepted. */
  const probe = (id: string, host: string, port: number) =>
    sh(
      id,
      `node -e "const s=require('net').connect(${port},'${host}');s.setTimeout(1500);const d=(w)=>{console.log(w);process.exit(0)};s.on('connect',()=>d('open'));s.on('error',()=>d('closed'));s.on('timeout',()=>d('closed'))"`,
    );

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const srv = net.createServer((s) => {
        s.on("error", () => {});
        s.end("hi");
      });
      await new Promise<void>((r) => srv.listen(0, "0.0.0.0", () => r()));
      listeners.push(srv);
      ports.push((srv.address() as net.AddressInfo).port);
    }
    runtime = new DockerRuntime({
      dataDir: dir,
      socketPath: engine.socketPath,
      hostPorts: [ports[0] as number],
    });
    await runtime.start();
  });

  afterAll(async () => {
    for (const id of made) await runtime?.destroy(id).catch(() => {});
    await runtime?.purgeHostState();
    for (const s of listeners) s.close();
    rmSync(dir, { recursive: true, force: true });
    await engine.stop();
  });

  it("lets an open sandbox reach the host's allowed port only, and no other sandbox", async () => {
    expect(runtime.filtersOpenEgress).toBe(true);
    const a = await create("open");
    const b = await create("open");
    const gateway = await sh(a, "ip -4 route show default | cut -d' ' -f3");
    expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await probe(a, gateway, ports[0] as number)).toBe("open");
    expect(await probe(a, gateway, ports[1] as number)).toBe("closed");

    const bIp = runtime.address(b);
    expect(bIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await new SupervisorClient(() => runtime.connect(b)).spawn({
      cmd: ["node", "-e", "require('net').createServer(s=>s.end('b')).listen(7002,'0.0.0.0')"],
      env: { PATH: "/usr/bin:/bin" },
    });
    // The host reaches b (so it listens); a does not.
    let fromHost = "closed";
    for (let i = 0; i < 50 && fromHost === "closed"; i++) {
      fromHost = await new Promise<string>((resolve) => {
        const s = net.connect(7002, bIp as string);
        s.once("connect", () => {
          s.destroy();
          resolve("open");
        });
        s.once("error", () => resolve("closed"));
      });
      if (fromHost === "closed") await new Promise((r) => setTimeout(r, 100));
    }
    expect(fromHost).toBe("open");
    expect(await probe(a, bIp as string, 7002)).toBe("closed");

    // Back to none: no address, nothing reachable.
    await runtime.setNetworkPolicy(a, { egress: "none", allow: [] });
    expect(runtime.address(a)).toBeNull();
    expect(await probe(a, gateway, ports[0] as number)).toBe("closed");
  });
});
