// The in-pod readers against a real berth-init run on this host (whose cgroup files stand in
// for a container's: the same layout a pod sees, v1 here, v2 on most hosts).
import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import { SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFrame } from "../../supervisor/src/frames.js";
import { type InitUnderTest, startInit } from "../../supervisor/src/test-harness.js";
import { podOomKills, podStats } from "./in-pod.js";

let init: InitUnderTest;
beforeAll(async () => {
  init = await startInit();
});
afterAll(() => init?.stop());

describe("reading a pod's counters through berth-init", () => {
  it("reads CPU, memory, processes and traffic from the cgroup files and /proc", async () => {
    const s = await podStats(init.client);
    expect(s.cpuSeconds).toBeGreaterThan(0);
    expect(s.memoryBytes).toBeGreaterThan(0);
    expect(s.memoryPeakBytes).toBeGreaterThanOrEqual(s.memoryBytes);
    expect(s.pids).toBeGreaterThan(0);
    expect(Number.isFinite(s.netRxBytes) && Number.isFinite(s.netTxBytes)).toBe(true);
  });

  it("reads the OOM kill count the kernel reports", async () => {
    const v2 = "/sys/fs/cgroup/memory.events";
    const file = existsSync(v2) ? v2 : "/sys/fs/cgroup/memory/memory.oom_control";
    const want = Number(/^oom_kill (\d+)$/m.exec(readFileSync(file, "utf8"))?.[1] ?? 0);
    expect(await podOomKills(init.client)).toBe(want);
  });

  it("gives up on a pod that answers a read and then sends nothing (0 kills, not a hang)", async () => {
    const server = net.createServer((sock) => {
      sock.once("data", () => sock.write(encodeFrame("r", { ok: true, size: 100 })));
    });
    const path = `${init.dir}/stalling.sock`;
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const client = new SupervisorClient(
        () =>
          new Promise((resolve) => {
            const c = net.connect(path, () => resolve(c));
          }),
      );
      const t0 = Date.now();
      expect(await podOomKills(client, 300)).toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(500); // both layouts tried, each given up on
    } finally {
      server.close();
    }
  });
});
