/**
 * The behaviour every runtime driver must show, written once against the `Runtime` interface
 * and the in-sandbox supervisor it connects to: create, exec, processes, PTY, files, limits,
 * network policy, ports, pause/resume, hibernate/wake, snapshots, and delete without leaks.
 * A driver's test file calls `describeRuntimeConformance` with a factory for its runtime.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Runtime, SandboxSpec } from "@berth/core";
import { type ExitStatus, SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * A behaviour a driver declares it cannot show on this host (named in docs/drivers.md). The cases
 * that need it are skipped for that driver only, with the gap in their output.
 */
export type RuntimeGap =
  /** No size limit on this driver's storage. */
  | "disk"
  /** No way to freeze a sandbox's processes (Kubernetes has no pause). */
  | "pause"
  /** No per-sandbox pids limit (Kubernetes sets it per node). */
  | "pids"
  /** No cgroup counters visible inside the sandbox (CPU, memory, OOM kills read as 0). */
  | "cgroup-stats";

export interface DriverUnderTest {
  runtime: Runtime;
  /** Declared gaps (none for a driver that shows every behaviour). */
  gaps?: RuntimeGap[];
  /** What of a destroyed sandbox is still on the machine (processes, mounts, cgroups...), as text. */
  leftovers(id: string): string[];
  /** Ends the runtime and removes whatever the tests made. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function describeRuntimeConformance(name: string, start: () => Promise<DriverUnderTest>): void {
  describe(`runtime conformance: ${name}`, () => {
    let d: DriverUnderTest;
    const made = new Set<string>();
    const tag = Math.random().toString(36).slice(2, 8);
    let n = 0;

    const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
      id: `cf-${tag}-${n++}`,
      template: "default",
      resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
      network: { egress: "none", allow: [] },
      env: { GREETING: "hello" },
      ...over,
    });
    const create = async (over: Partial<SandboxSpec> = {}) => {
      const s = spec(over);
      made.add(s.id);
      await d.runtime.create(s);
      return s.id;
    };
    const client = (id: string) => new SupervisorClient(() => d.runtime.connect(id));
    const run = async (id: string, cmd: string[], o: { stdin?: string; pty?: boolean } = {}) => {
      const proc = await client(id).exec({
        cmd,
        env: { PATH: "/usr/bin:/bin", GREETING: "hello" },
        stdin: o.stdin !== undefined,
        pty: o.pty ? { cols: 80, rows: 24 } : undefined,
      });
      const out = { stdout: "", stderr: "" };
      proc.on("stdout", (b: Buffer) => {
        out.stdout += b.toString();
      });
      proc.on("stderr", (b: Buffer) => {
        out.stderr += b.toString();
      });
      if (o.stdin !== undefined) {
        proc.writeStdin(o.stdin);
        proc.endStdin();
      }
      const status = await new Promise<ExitStatus>((resolve, reject) => {
        proc.on("exit", resolve);
        proc.on("error", reject);
      });
      return { ...out, ...status };
    };
    const sh = (id: string, script: string) => run(id, ["sh", "-c", script]);

    beforeAll(async () => {
      d = await start();
    });
    afterAll(async () => {
      for (const id of made) await d?.runtime.destroy(id).catch(() => {});
      await d?.close();
    });

    it("creates a running sandbox that runs commands as uid 1000 in /workspace, hostname = id", async () => {
      const id = await create();
      expect((await d.runtime.inspect(id)).state).toBe("running");
      const r = await sh(id, 'id -u; hostname; pwd; echo "$GREETING"');
      expect(r).toMatchObject({ exitCode: 0, stdout: `1000\n${id}\n/workspace\nhello\n` });
      expect((await run(id, ["cat"], { stdin: "piped" })).stdout).toBe("piped");
      expect((await run(id, ["sh", "-c", "test -t 0 && echo tty"], { pty: true })).stdout).toContain("tty");
    });

    it("keeps background processes with their output and exit codes", async () => {
      const id = await create();
      const c = client(id);
      const { pid } = await c.spawn({
        cmd: ["sh", "-c", "echo started; sleep 0.2; exit 3"],
        env: { PATH: "/usr/bin:/bin" },
      });
      let info = await c.process(pid);
      for (let i = 0; i < 50 && info.state === "running"; i++) {
        await sleep(50);
        info = await c.process(pid);
      }
      expect(info).toMatchObject({ state: "exited", exitCode: 3 });
      expect((await c.processes()).map((p) => p.pid)).toContain(pid);
    });

    it("reads and writes files as the sandbox user, and keeps sandboxes' files apart", async () => {
      const a = await create();
      const b = await create();
      await client(a).write("/workspace/note.txt", Buffer.from("only in a"));
      const { stream } = await client(a).read("/workspace/note.txt");
      let text = "";
      for await (const chunk of stream) text += chunk;
      expect(text).toBe("only in a");
      expect((await sh(a, "stat -c %u /workspace/note.txt")).stdout).toBe("1000\n");
      expect((await sh(b, "cat /workspace/note.txt")).exitCode).not.toBe(0);
    });

    it("enforces memory (OOM counted) and pids limits", async () => {
      const id = await create();
      const oom = await sh(id, "head -c 400000000 /dev/zero | tail > /dev/null");
      expect(oom.exitCode).not.toBe(0);
      if (!d.gaps?.includes("cgroup-stats"))
        expect((await d.runtime.inspect(id)).oomKills).toBeGreaterThan(0);
      if (!d.gaps?.includes("pids")) {
        const forks = await sh(id, "for i in $(seq 300); do sleep 5 & done 2>&1 | head -1; wait");
        expect(forks.stdout + forks.stderr).toMatch(/fork|resource|Cannot/i);
      }
      expect((await sh(id, "echo alive")).stdout).toBe("alive\n");
    });

    it("enforces the disk limit", async (ctx) => {
      if (d.gaps?.includes("disk"))
        return ctx.skip("declared gap: disk (no size limit on this driver's storage)");
      const id = await create();
      const disk = await sh(id, "head -c 200000000 /dev/zero > /workspace/big; echo $?");
      // ENOSPC from a sized filesystem, or EDQUOT from a quota on a shared one: a write refused at the limit.
      expect(disk.stderr).toMatch(/No space left|Disk quota exceeded/);
      expect((await sh(id, "echo alive")).stdout).toBe("alive\n");
    });

    it("reports CPU, memory, disk and pids", async () => {
      const id = await create();
      await sh(
        id,
        "head -c 5000000 /dev/urandom > /workspace/f; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
      );
      const s = await d.runtime.stats(id);
      if (!d.gaps?.includes("cgroup-stats")) {
        expect(s.cpuSeconds).toBeGreaterThan(0);
        expect(s.memoryBytes).toBeGreaterThan(0);
      }
      expect(s.diskBytes).toBeGreaterThanOrEqual(5_000_000);
      expect(s.pids).toBeGreaterThanOrEqual(1);
    });

    it("applies egress policies and reaches ports inside the sandbox", async () => {
      const id = await create();
      // egress none: not even a name resolves.
      expect((await sh(id, "getent hosts example.com")).exitCode).not.toBe(0);
      if (d.runtime.egressModes.includes("open")) {
        await d.runtime.setNetworkPolicy(id, { egress: "open", allow: [] });
        expect((await sh(id, "cat /etc/resolv.conf")).stdout).toMatch(/nameserver/);
      }
      await client(id).spawn({
        cmd: ["node", "-e", "require('net').createServer(s=>s.end('hi')).listen(7001,'127.0.0.1')"],
        env: { PATH: "/usr/bin:/bin" },
      });
      let got = "";
      for (let i = 0; i < 50 && got === ""; i++) {
        try {
          const s = await client(id).dial(7001);
          for await (const chunk of s) got += chunk;
        } catch {
          await sleep(100);
        }
      }
      expect(got).toBe("hi");
    });

    it("pauses (processes frozen) and resumes", async (ctx) => {
      if (d.gaps?.includes("pause"))
        return ctx.skip("declared gap: pause (this driver cannot freeze a sandbox)");
      const id = await create();
      await client(id).spawn({
        cmd: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"],
        env: { PATH: "/usr/bin:/bin" },
      });
      await sleep(300);
      await d.runtime.pause(id);
      expect((await d.runtime.inspect(id)).state).toBe("paused");
      await d.runtime.resume(id);
      const before = (await sh(id, "cat /tmp/n")).stdout;
      await sleep(300);
      expect((await sh(id, "cat /tmp/n")).stdout).not.toBe(before);
    });

    it("hibernates (no process left) and wakes with its files", async () => {
      const id = await create();
      await sh(id, "echo kept > /workspace/k");
      await d.runtime.hibernate(id);
      expect((await d.runtime.inspect(id)).state).not.toBe("running");
      await d.runtime.wake(id);
      expect((await sh(id, "cat /workspace/k")).stdout).toBe("kept\n");
    });

    it("snapshots a sandbox and starts another from it", async () => {
      const id = await create();
      await sh(id, "mkdir -p /workspace/d && echo snap > /workspace/d/f");
      const dir = mkdtempSync("/tmp/berth-cf-snap-");
      try {
        const file = `${dir}/s.tar.zst`;
        expect(await d.runtime.snapshot(id, file)).toBeGreaterThan(0);
        const copy = await create({ fromSnapshot: file });
        expect((await sh(copy, "cat /workspace/d/f")).stdout).toBe("snap\n");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("destroys a sandbox without leaving anything behind, and is idempotent", async () => {
      const id = await create();
      await client(id).spawn({ cmd: ["sleep", "600"], env: { PATH: "/usr/bin:/bin" } });
      await d.runtime.destroy(id);
      await d.runtime.destroy(id);
      made.delete(id);
      expect((await d.runtime.inspect(id)).state).toBe("missing");
      expect(d.leftovers(id)).toEqual([]);
    });
  });
}
