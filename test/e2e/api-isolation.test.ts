import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
const create = async (body: unknown = {}) => {
  const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
const exec = async (id: string, script: string, timeoutMs?: number) =>
  (
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, {
      cmd: ["sh", "-c", script],
      timeoutMs,
    })
  ).body;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/** Everything on the host that mentions a sandbox id: processes, mounts, cgroups, files. */
function traces(id: string): string[] {
  const found: string[] = [];
  const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
  for (const line of ps.split("\n"))
    if (line.includes(id) && !line.includes("ps -eo")) found.push(`process: ${line}`);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n"))
    if (line.includes(id)) found.push(`mount: ${line}`);
  const cg = execFileSync(
    "sh",
    ["-c", `find /sys/fs/cgroup -maxdepth 6 -type d -name '*${id}*' 2>/dev/null || true`],
    {
      encoding: "utf8",
    },
  ).trim();
  if (cg) found.push(`cgroups: ${cg}`);
  const files = execFileSync("sh", ["-c", `find ${server.dataDir} -name '*${id}*' 2>/dev/null || true`], {
    encoding: "utf8",
  }).trim();
  if (files) found.push(`files: ${files}`);
  return found;
}

describe("isolation", () => {
  it("a sandbox sees only its own processes, cannot write /usr, and cannot read another sandbox's files", async () => {
    const a = await create();
    const b = await create();
    await exec(a, "echo secret-of-a > /workspace/mine.txt; echo tmp-of-a > /tmp/mine.txt");
    const ps = await exec(b, "ls /proc | grep -c '^[0-9]'");
    expect(Number(ps.stdout.trim())).toBeLessThan(10);
    const pids = await exec(b, "cat /proc/1/cmdline | tr '\\0' ' '");
    expect(pids.stdout).toContain("init");
    const usr = await exec(b, "touch /usr/bin/evil 2>&1; echo rc=$?");
    expect(usr.stdout).toMatch(/Read-only file system|Permission denied/);
    expect(usr.stdout).toContain("rc=1");
    expect(existsSync("/usr/bin/evil")).toBe(false);
    const look = await exec(
      b,
      "cat /workspace/mine.txt /tmp/mine.txt 2>&1; grep -rs secret-of-a /workspace /tmp /home /run /var /etc /mnt 2>/dev/null | head -3; true",
      60_000,
    );
    expect(look.stdout).not.toContain("secret-of-a\n");
    expect(look.stdout).not.toContain("tmp-of-a");
    const caps = await exec(b, "grep -E 'CapEff|NoNewPrivs' /proc/self/status");
    expect(caps.stdout).toMatch(/CapEff:\s+0+\n/);
    expect(caps.stdout).toMatch(/NoNewPrivs:\s+1/);
  });

  it("a memory hog is OOM-killed at memoryMiB and the OOM is reported as an event", async () => {
    const id = await create({ resources: { memoryMiB: 64 } });
    const r = await exec(id, "head -c 400m /dev/zero | tail > /dev/null", 60_000);
    expect(r.exitCode).not.toBe(0);
    const { events } = await readSse(
      `${server.url}/v1/sandboxes/${id}/events`,
      { headers: { authorization: `Bearer ${server.adminKey}` } },
      { until: (e) => e.event === "oom", timeoutMs: 15_000 },
    );
    expect(events.map((e) => e.event)).toContain("oom");
    // The sandbox itself lives on.
    expect((await exec(id, "echo alive")).stdout).toBe("alive\n");
  });

  it("the pids limit stops a fork bomb without hurting the host or the sandbox", async () => {
    const id = await create({ resources: { pids: 64 } });
    const running = api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, {
      cmd: ["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 3"],
      timeoutMs: 6_000,
    });
    let peak = 0;
    // Sampled every 100 ms while the bomb runs (its 3 s): the highest count is its peak.
    for (let i = 0; i < 15; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const m = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/metrics`);
      peak = Math.max(peak, m.body.pids ?? 0);
    }
    // The bomb reaches the budget and stops there.
    expect(peak).toBeGreaterThan(56);
    expect(peak).toBeLessThanOrEqual(64);
    const bomb = (await running).body;
    expect(bomb.stderr).toMatch(/fork: (retry: )?Resource temporarily unavailable/);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    // Once the bomb is gone the sandbox works again.
    await exec(id, "kill -KILL -1 2>/dev/null; true");
    const ok = await waitFor(
      "the sandbox to run a command again",
      async () => (await exec(id, "echo fine")).stdout ?? "",
      (out) => out === "fine\n",
    );
    expect(ok).toBe("fine\n");
  });

  it("filling the disk stops at diskMiB with ENOSPC", async () => {
    const id = await create({ resources: { diskMiB: 32 } });
    const r = await exec(id, "dd if=/dev/zero of=/workspace/fill bs=1M count=100 2>&1; echo rc=$?", 60_000);
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.stdout).not.toContain("rc=0");
    const size = Number((await exec(id, "du -m /workspace/fill | cut -f1")).stdout.trim());
    expect(size).toBeLessThanOrEqual(32);
  });

  it("deleting leaves no process, mount, cgroup or directory behind", async () => {
    const id = await create();
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, { cmd: ["sleep", "600"] });
    await exec(id, "echo data > /workspace/x");
    expect(traces(id).length).toBeGreaterThan(0);
    expect((await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(traces(id)).toEqual([]);
  });
});
