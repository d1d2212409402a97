import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
const create = async (body: unknown = {}) => {
  const r = await call("POST", "/v1/sandboxes", body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
const sh = (id: string, script: string) =>
  call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] });
const state = async (id: string) => (await call("GET", `/v1/sandboxes/${id}`)).body.state as string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const runtimeDir = (id: string) => `${server.dataDir}/runtime/sandboxes/${id}`;
/** Host processes and mounts that belong to the sandbox. */
const processesOf = (id: string) =>
  execFileSync("sh", ["-c", `ps -eo args | grep -c '[${id[0]}]${id.slice(1)}' || true`], {
    encoding: "utf8",
  }).trim();
const mountsOf = (id: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(id));

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/** Starts a counter that ticks every 100 ms in the sandbox; returns a reader from the host. */
async function startCounter(id: string) {
  const r = await call("POST", `/v1/sandboxes/${id}/processes`, {
    cmd: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"],
  });
  expect(r.status).toBe(201);
  await counterAbove(id, 0);
}

/** Waits until the counter in the sandbox has passed `n`; answers its value. */
async function counterAbove(id: string, n: number): Promise<number> {
  const r = await waitFor(
    `the counter in ${id} to pass ${n}`,
    () => sh(id, "cat /tmp/count 2>/dev/null"),
    (r) => Number(r.body.stdout) > n,
  );
  return Number(r.body.stdout);
}

describe("pause and resume", () => {
  it("freezes every process (the counter stops) and thaws it", async () => {
    const id = await create();
    await startCounter(id);
    const info = JSON.parse(readFileSync(`${runtimeDir(id)}/info.json`, "utf8"));
    const paused = await call("POST", `/v1/sandboxes/${id}/pause`);
    expect(paused.body.state).toBe("paused");
    const freezer = info.cgroupPaths.freezer ?? info.cgroupPaths[""];
    const frozen = readFileSync(
      info.cgroupPaths.freezer ? `${freezer}/freezer.state` : `${freezer}/cgroup.freeze`,
      "utf8",
    ).trim();
    expect(["FROZEN", "1"]).toContain(frozen);
    // Its CPU time does not move while paused.
    const cpu = () => {
      const p = info.cgroupPaths.cpuacct ?? info.cgroupPaths.cpu;
      return p ? Number(readFileSync(`${p}/cpuacct.usage`, "utf8")) : 0;
    };
    const c1 = cpu();
    await sleep(800); // the behaviour under test: no CPU time at all for a while
    expect(cpu()).toBe(c1);
    expect((await call("POST", `/v1/sandboxes/${id}/pause`)).body.state).toBe("paused"); // idempotent
    const resumed = await call("POST", `/v1/sandboxes/${id}/resume`);
    expect(resumed.body.state).toBe("running");
    const n1 = Number((await sh(id, "cat /tmp/count")).body.stdout);
    expect(await counterAbove(id, n1)).toBeGreaterThan(n1);
  });

  it("resumes a paused sandbox by itself when it is used, and says how long that took", async () => {
    const id = await create();
    await call("POST", `/v1/sandboxes/${id}/pause`);
    const r = await sh(id, "echo awake");
    expect(r.body.stdout).toBe("awake\n");
    expect(Number(r.headers.get("x-berth-wake-ms"))).toBeGreaterThan(0);
    expect(await state(id)).toBe("running");
  });
});

describe("hibernate and wake", () => {
  it("frees processes and mounts, keeps files, env, hostname and address, and wakes ready to exec", async () => {
    const id = await create({ env: { KEEP: "me" } });
    await sh(
      id,
      "echo precious > /workspace/file; mkdir -p /home/user/.cache && echo x > /home/user/.cache/y",
    );
    await startCounter(id);
    const addr = (await sh(id, "ip -4 -o addr show eth0 | awk '{print $4}'")).body.stdout;
    const h = await call("POST", `/v1/sandboxes/${id}/hibernate`);
    expect(h.body.state).toBe("hibernated");
    expect(processesOf(id)).toBe("0");
    expect(mountsOf(id)).toEqual([]);
    const w = await call("POST", `/v1/sandboxes/${id}/wake`);
    expect(w.body.state).toBe("running");
    const r = await sh(id, 'cat /workspace/file /home/user/.cache/y; echo "$KEEP"; hostname');
    expect(r.body.stdout).toBe(`precious\nx\nme\n${id}\n`);
    // The counter did not come back (nothing was asked to restart on wake), and says so.
    const procs = (await call("GET", `/v1/sandboxes/${id}/processes`)).body.items;
    expect(procs.map((p: { state: string; signal: string }) => [p.state, p.signal])).toEqual([
      ["exited", "SIGKILL"],
    ]);
    const c1 = (await sh(id, "cat /tmp/count")).body.stdout;
    await sleep(400); // the behaviour under test: the counter stays still (it ticked every 100 ms)
    expect((await sh(id, "cat /tmp/count")).body.stdout).toBe(c1);
    expect((await sh(id, "ip -4 -o addr show eth0 | awk '{print $4}'")).body.stdout).toBe(addr);
  });

  it("starts restart: on-wake processes again after a wake, if they ran until the hibernate", async () => {
    const id = await create();
    const start = (cmd: string, restart?: string) =>
      call("POST", `/v1/sandboxes/${id}/processes`, { cmd: ["sh", "-c", cmd], env: { MARK: "m" }, restart });
    await start('while true; do echo "$MARK" > /tmp/alive; sleep 0.1; done', "on-wake");
    await start("sleep 600");
    await start("exit 0", "on-wake"); // ended before the hibernate: stays ended
    await waitFor(
      "the loop to write /tmp/alive and `exit 0` to end",
      async () => ({
        alive: (await sh(id, "cat /tmp/alive 2>/dev/null")).body.stdout,
        procs: (await call("GET", `/v1/sandboxes/${id}/processes`)).body.items,
      }),
      (v) =>
        v.alive === "m\n" &&
        v.procs.some(
          (p: { cmd: string[]; state: string }) => p.cmd.includes("exit 0") && p.state === "exited",
        ),
    );
    const h = await call("POST", `/v1/sandboxes/${id}/hibernate`);
    expect(h.body.state, JSON.stringify(h.body)).toBe("hibernated");
    const w = await call("POST", `/v1/sandboxes/${id}/wake`);
    expect(w.body.state, JSON.stringify(w.body)).toBe("running");
    await sh(id, "rm -f /tmp/alive");
    // The restarted loop writes the file again within ~100 ms; allow a loaded machine 5 s.
    const seen = await sh(
      id,
      "for i in $(seq 50); do [ -s /tmp/alive ] && break; sleep 0.1; done; cat /tmp/alive",
    );
    expect(seen.body, JSON.stringify(seen.body)).toMatchObject({ exitCode: 0, stdout: "m\n" });
    const running = (await call("GET", `/v1/sandboxes/${id}/processes`)).body.items.filter(
      (p: { state: string }) => p.state === "running",
    );
    expect(running).toHaveLength(1);
    expect(running[0].cmd.join(" ")).toContain("/tmp/alive");
  });

  it("wakes a hibernated sandbox by itself on exec and on the file API", async () => {
    const id = await create();
    await sh(id, "echo kept > /workspace/k");
    const h = await call("POST", `/v1/sandboxes/${id}/hibernate`);
    expect(h.body.state, JSON.stringify(h.body)).toBe("hibernated");
    const r = await sh(id, "cat /workspace/k");
    expect(r.body.stdout, JSON.stringify(r.body)).toBe("kept\n");
    expect(Number(r.headers.get("x-berth-wake-ms"))).toBeGreaterThan(0);
    await call("POST", `/v1/sandboxes/${id}/hibernate`);
    const file = await fetch(`${server.url}/v1/sandboxes/${id}/files/content?path=/workspace/k`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(await file.text()).toBe("kept\n");
    expect(file.headers.get("x-berth-wake-ms")).toBeTruthy();
  });

  it("refuses transitions that make no sense with 409, and is idempotent for the ones that do", async () => {
    const id = await create();
    expect((await call("POST", `/v1/sandboxes/${id}/wake`)).body.state).toBe("running");
    expect((await call("POST", `/v1/sandboxes/${id}/resume`)).body.state).toBe("running");
    await call("POST", `/v1/sandboxes/${id}/hibernate`);
    const p = await call("POST", `/v1/sandboxes/${id}/pause`);
    expect(p.status).toBe(409);
    expect(p.body.error.code).toBe("invalid_state");
    expect(p.body.error.message).toMatch(/is hibernated.*wake it first/);
    expect((await call("POST", `/v1/sandboxes/${id}/hibernate`)).body.state).toBe("hibernated");
  });
});

describe("idle policies", () => {
  it("applies pause, hibernate and delete after idle.afterSeconds without activity", async () => {
    const paused = await create({ idle: { afterSeconds: 1, action: "pause" } });
    const hibernated = await create({ idle: { afterSeconds: 1, action: "hibernate" } });
    const deleted = await create({ idle: { afterSeconds: 1, action: "delete" } });
    await waitFor(
      "the idle actions",
      () => Promise.all([paused, hibernated, deleted].map(state)),
      (states) => states.join() === "paused,hibernated,deleted",
    );
    // Use wakes it again.
    expect((await sh(hibernated, "echo back")).body.stdout).toBe("back\n");
  });

  it("keeps a sandbox that is being used", async () => {
    const id = await create({ idle: { afterSeconds: 2, action: "hibernate" } });
    // The behaviour under test: used every 500 ms for 3 s, longer than its idle time.
    for (let i = 0; i < 6; i++) {
      await sh(id, "true");
      await sleep(500);
    }
    expect(await state(id)).toBe("running");
  });
});

describe("restart and delete", () => {
  it("keeps paused and hibernated sandboxes across a server restart, and deletes them without leftovers", async () => {
    const paused = await create();
    const hibernated = await create();
    await sh(hibernated, "echo still > /workspace/s");
    await call("POST", `/v1/sandboxes/${paused}/pause`);
    await call("POST", `/v1/sandboxes/${hibernated}/hibernate`);
    await server.restart();
    expect(await state(paused)).toBe("paused");
    expect(await state(hibernated)).toBe("hibernated");
    expect((await sh(hibernated, "cat /workspace/s")).body.stdout).toBe("still\n");
    await call("POST", `/v1/sandboxes/${hibernated}/hibernate`);
    for (const id of [paused, hibernated]) {
      expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
      expect(processesOf(id)).toBe("0");
      expect(mountsOf(id)).toEqual([]);
      expect(() => readFileSync(`${runtimeDir(id)}/config.json`)).toThrow();
    }
  });
});
