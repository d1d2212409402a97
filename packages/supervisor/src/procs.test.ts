import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { NotFoundError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, collect, eventually, type InitUnderTest, startInit } from "./test-harness.js";

let init: InitUnderTest;
beforeAll(async () => {
  init = await startInit();
});
afterAll(async () => {
  await init?.stop();
});

describe("berth-init background processes", () => {
  it("spawns a process that outlives the connection; logs replay its output; status after exit", async () => {
    const { pid } = await init.client.spawn({
      cmd: ["sh", "-c", "echo one; echo two >&2; read x < /dev/null; exit 4"],
      cwd: "/tmp",
      env: {},
    });
    expect(await eventually(async () => (await init.client.process(pid)).state === "exited")).toBe(true);
    const info = await init.client.process(pid);
    expect(info).toMatchObject({ pid, cwd: "/tmp", state: "exited", exitCode: 4, signal: null });
    expect(info.cmd[0]).toBe("sh");
    expect(Date.parse(info.exitedAt!)).toBeGreaterThanOrEqual(Date.parse(info.startedAt!));
    const r = await collect(await init.client.logs(pid, { follow: false }));
    expect(r).toMatchObject({ stdout: "one\n", stderr: "two\n", exitCode: 4 });
    expect((await init.client.processes()).map((p) => p.pid)).toContain(pid);
  });

  it("follows logs of a running process until it exits; without follow reports exitCode null", async () => {
    const { pid } = await init.client.spawn({
      cmd: ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done"],
      env: {},
    });
    const snapshot = await collect(await init.client.logs(pid, { follow: false }));
    expect(snapshot.exitCode).toBeNull();
    const r = await collect(await init.client.logs(pid, { follow: true }));
    expect(r.stdout).toBe("line1\nline2\nline3\n");
    expect(r.exitCode).toBe(0);
  });

  it("signals the process group of a spawned process and records the signal", async () => {
    const { pid } = await init.client.spawn({ cmd: ["sh", "-c", "sleep 300 & wait"], env: {} });
    expect((await init.client.process(pid)).state).toBe("running");
    const follow = collect(await init.client.logs(pid, { follow: true }));
    await init.client.signal(pid, 9);
    expect(await follow).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    const info = await init.client.process(pid);
    expect(info).toMatchObject({ state: "exited", signal: "SIGKILL", exitCode: null });
    await expect(init.client.signal(pid, 15)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("answers NotFoundError (process) for unknown pids", async () => {
    await expect(init.client.process(999999)).rejects.toMatchObject({
      code: "not_found",
      details: { kind: "process" },
    });
    await expect(init.client.logs(999999, { follow: false })).rejects.toBeInstanceOf(NotFoundError);
    await expect(init.client.signal(999999, 15)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("bounds the log by rotating past 4 MiB, and logs replay the tail in order", async () => {
    // 12 MiB of numbered lines: only the last ~4-8 MiB are kept
    const { pid } = await init.client.spawn({
      cmd: ["sh", "-c", "seq 1 1500000"],
      env: {},
    });
    expect(await eventually(async () => (await init.client.process(pid)).state === "exited", 30_000)).toBe(
      true,
    );
    const dir = join(init.state, "procs", String(pid));
    const files = readdirSync(dir);
    expect(files).toEqual(expect.arrayContaining(["log", "log.1", "status", "cmd.json"]));
    const total = statSync(join(dir, "log")).size + statSync(join(dir, "log.1")).size;
    expect(total).toBeLessThanOrEqual(8 * 1024 * 1024);
    const r = await collect(await init.client.logs(pid, { follow: false }));
    // the first line may be cut where rotation dropped the older output
    const lines = r.stdout.trimEnd().split("\n").slice(1).map(Number);
    expect(lines.at(-1)).toBe(1500000);
    expect(lines.length).toBeGreaterThan(100000);
    // contiguous: rotation loses only the oldest output
    expect(lines.every((n, i) => i === 0 || n === lines[i - 1]! + 1)).toBe(true);
  });

  it("kills spawned processes when the supervisor is told to stop", async () => {
    const other = await startInit();
    try {
      const { pid } = await other.client.spawn({ cmd: ["sleep", "300"], env: {} });
      expect(alive(pid)).toBe(true);
      other.proc.kill("SIGTERM");
      expect(await eventually(() => other.proc.exitCode !== null)).toBe(true);
      expect(other.proc.exitCode).toBe(0);
      expect(await eventually(() => !alive(pid))).toBe(true);
    } finally {
      await other.stop();
    }
    expect(existsSync(other.dir)).toBe(false);
  });
});
