// The Docker driver's `open` egress is filtered as the local driver's is: on the host only the
// given ports, and no other sandbox; `none` has loopback only; `allowlist` reaches listed names
// (through Berth's resolver and egress proxy) and CIDRs only. The "outside" servers live in
// network namespaces these tests create; no traffic leaves the machine.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import type { SandboxSpec } from "@berth/core";
import { DockerRuntime } from "@berth/runtime-docker";
import { SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";
import { type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { shIn } from "../support/runtime-sh.js";

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
  let a: OutsideServer;
  let b: OutsideServer;
  let c: OutsideServer;
  let dns: { address: string; stop(): void };

  const create = async (egress: "none" | "open" | "allowlist", allow: string[] = []) => {
    const spec: SandboxSpec = {
      id: `dn-${tag}-${n++}`,
      template: "default",
      resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
      network: { egress, allow },
      env: {},
    };
    made.push(spec.id);
    await runtime.create(spec);
    return spec.id;
  };
  const sh = async (id: string, script: string) => (await shIn(runtime, id, script)).stdout.trim();
  const newRuntime = () =>
    new DockerRuntime({
      dataDir: dir,
      socketPath: engine.socketPath,
      hostPorts: [ports[0] as number],
      dnsUpstream: dns.address,
    });
  /** `open` or `closed`: whether a TCP connection from the sandbox to host:port is accepted. */
  const probe = (id: string, host: string, port: number) =>
    sh(
      id,
      `node -e "const s=require('net').connect(${port},'${host}');s.setTimeout(1500);const d=(w)=>{console.log(w);process.exit(0)};s.on('connect',()=>d('open'));s.on('error',()=>d('closed'));s.on('timeout',()=>d('closed'))"`,
    );
  /** curl from inside the sandbox: the body, or `FAIL <curl exit code>`. */
  const curl = (id: string, url: string, extra = "") =>
    sh(id, `curl -s -m 3 ${extra} ${url} || echo "FAIL $?"`);
  const resolves = (id: string, name: string) => sh(id, `getent hosts ${name} || echo NONE`);
  const ruleset = () => execFileSync("nft", ["list", "ruleset"], { encoding: "utf8" });

  beforeAll(async () => {
    [a, b, c] = await Promise.all([
      startOutsideServer("a"),
      startOutsideServer("b"),
      startOutsideServer("c"),
    ]);
    dns = await startFakeDns({ "allowed.test": a.ip, "x.wild.test": a.ip, "other.test": b.ip });
    for (let i = 0; i < 2; i++) {
      const srv = net.createServer((s) => {
        s.on("error", () => {});
        s.end("hi");
      });
      await new Promise<void>((r) => srv.listen(0, "0.0.0.0", () => r()));
      listeners.push(srv);
      ports.push((srv.address() as net.AddressInfo).port);
    }
    runtime = newRuntime();
    await runtime.start();
  });

  afterAll(async () => {
    for (const id of made) await runtime?.destroy(id).catch(() => {});
    await runtime?.purgeHostState();
    await runtime?.close();
    for (const s of listeners) s.close();
    for (const o of [a, b, c]) o?.stop();
    dns?.stop();
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

    const bIp = runtime.addressing.address(b);
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
    expect(runtime.addressing.address(a)).toBeNull();
    expect(await probe(a, gateway, ports[0] as number)).toBe("closed");
  });

  it("lets an allowlist sandbox reach listed names and CIDRs only; not IP literals or forged Host headers", async () => {
    expect(runtime.egressModes).toContain("allowlist");
    const id = await create("allowlist", ["allowed.test", "*.wild.test", `${c.ip}/32`]);
    expect(runtime.addressing.address(id)).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // Names resolve through Berth's resolver: listed ones only.
    expect(await resolves(id, "allowed.test")).toContain(a.ip);
    expect(await resolves(id, "x.wild.test")).toContain(a.ip);
    expect(await resolves(id, "other.test")).toBe("NONE");
    // A listed name's address is open (port 8080 directly), web ports go through the proxy.
    expect(await curl(id, "http://allowed.test:8080")).toBe("outside:a:allowed.test:8080");
    expect(await curl(id, "http://allowed.test/")).toBe("outside:a:allowed.test");
    expect(await curl(id, "https://allowed.test/", "-k")).toBe("outside:a:allowed.test");
    expect(await curl(id, "http://allowed.test/", "-H 'Host: other.test'")).toContain(
      "berth: egress to 'other.test' is not in this sandbox's allowlist",
    );
    // An address not listed (nor resolved for a listed name) is not reachable; a listed CIDR is.
    expect(await curl(id, `http://${b.ip}:8080`)).toMatch(/^FAIL/);
    expect(await curl(id, `http://${c.ip}:8080`)).toBe(`outside:c:${c.ip}:8080`);
    // On the host only the allowed port, as for open sandboxes.
    const gateway = runtime.addressing.hostAddress(id) as string;
    expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await probe(id, gateway, ports[0] as number)).toBe("open");
    expect(await probe(id, gateway, ports[1] as number)).toBe("closed");
  });

  it("follows policy changes, hibernate and wake, a restart, and leaves no rules behind", async () => {
    const id = await create("open");
    const chain = `sb_${id.replace(/-/g, "_")}`;
    expect(await curl(id, `http://${b.ip}:8080`)).toBe(`outside:b:${b.ip}:8080`);
    await runtime.setNetworkPolicy(id, { egress: "allowlist", allow: ["other.test"] });
    expect(ruleset()).toContain(chain);
    expect(await curl(id, "http://other.test/")).toBe("outside:b:other.test");
    expect(await curl(id, "http://allowed.test/")).toMatch(/^FAIL/);
    expect(await curl(id, `http://${c.ip}:8080`)).toMatch(/^FAIL/);
    await runtime.setNetworkPolicy(id, { egress: "allowlist", allow: ["allowed.test"] });
    expect(await curl(id, "http://allowed.test/")).toBe("outside:a:allowed.test");
    expect(await resolves(id, "other.test")).toBe("NONE");

    await runtime.hibernate(id);
    expect(ruleset()).not.toContain(chain);
    await runtime.wake(id);
    expect(await curl(id, "http://allowed.test/")).toBe("outside:a:allowed.test");

    // A new runtime on the same data dir (a server restart) writes the rules again from the policy kept.
    await runtime.close();
    runtime = newRuntime();
    await runtime.start();
    expect(await curl(id, "http://allowed.test/")).toBe("outside:a:allowed.test");
    expect(await curl(id, `http://${b.ip}:8080`)).toMatch(/^FAIL/);

    await runtime.setNetworkPolicy(id, { egress: "open", allow: [] });
    expect(ruleset()).not.toContain(chain);
    expect(await curl(id, `http://${b.ip}:8080`)).toBe(`outside:b:${b.ip}:8080`);
    await runtime.setNetworkPolicy(id, { egress: "allowlist", allow: ["allowed.test"] });
    expect(ruleset()).toContain(chain);
    await runtime.destroy(id);
    expect(ruleset()).not.toContain(chain);
  });
});
