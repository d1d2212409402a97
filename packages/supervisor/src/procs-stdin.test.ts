import { ConflictError, NotFoundError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, eventually, type InitUnderTest, startInit } from "./test-harness.js";

let init: InitUnderTest;
beforeAll(async () => {
  init = await startInit();
});
afterAll(async () => {
  await init?.stop();
});

const follow = async (pid: number) => collect(await init.client.logs(pid, { follow: true }));

describe("berth-init kept stdin of background processes", () => {
  it("takes writes from separate connections, then a close ends the process's input", async () => {
    const { pid } = await init.client.spawn({ cmd: ["cat"], env: {}, stdin: true });
    expect(await init.client.writeStdin(pid, Buffer.from("one\n"), { close: false })).toEqual({
      written: 4,
      closed: false,
    });
    expect(await init.client.writeStdin(pid, Buffer.from("two\n"), { close: true })).toEqual({
      written: 4,
      closed: true,
    });
    expect(await follow(pid)).toMatchObject({ stdout: "one\ntwo\n", exitCode: 0 });
    await expect(init.client.writeStdin(pid, Buffer.from("x"), { close: false })).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringContaining("has exited"),
    });
  });

  it("a close without data closes stdin; a later write says stdin was closed", async () => {
    // the process lives on after its stdin closes, so the later write meets the closed pipe
    const { pid } = await init.client.spawn({
      cmd: ["sh", "-c", "cat; echo eof; sleep 300"],
      env: {},
      stdin: true,
    });
    expect(await init.client.writeStdin(pid, Buffer.alloc(0), { close: true })).toEqual({
      written: 0,
      closed: true,
    });
    const err = await init.client.writeStdin(pid, Buffer.from("late"), { close: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toContain("stdin was closed");
    const logs = await collect(await init.client.logs(pid, { follow: false }));
    expect(logs.stdout).toBe("eof\n");
    await init.client.signal(pid, 9);
  });

  it("moves megabytes through a full pipe (backpressure) while the shim keeps draining output", async () => {
    // 3 MiB through cat: the 64 KiB pipes fill both ways; without draining stdout while stdin is
    // stalled, this would deadlock
    const data = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = 97 + (i % 26);
    const { pid } = await init.client.spawn({ cmd: ["cat"], env: {}, stdin: true });
    expect(await init.client.writeStdin(pid, data, { close: true })).toEqual({
      written: data.length,
      closed: true,
    });
    const r = await follow(pid);
    expect(r.exitCode).toBe(0);
    expect(r.out.equals(data)).toBe(true);
  });

  it("serves concurrent writers one at a time: their bytes never interleave", async () => {
    const { pid } = await init.client.spawn({ cmd: ["cat"], env: {}, stdin: true });
    const a = Buffer.alloc(512 * 1024, "a");
    const b = Buffer.alloc(512 * 1024, "b");
    await Promise.all([
      init.client.writeStdin(pid, a, { close: false }),
      init.client.writeStdin(pid, b, { close: false }),
    ]);
    await init.client.writeStdin(pid, Buffer.alloc(0), { close: true });
    const out = (await follow(pid)).stdout;
    expect(out.length).toBe(a.length + b.length);
    expect(out === a.toString() + b.toString() || out === b.toString() + a.toString()).toBe(true);
  });

  it("refuses stdin of a process started without it (409, says to start it with stdin), of unknown pids (404) and after the process closed it", async () => {
    const { pid } = await init.client.spawn({ cmd: ["sleep", "300"], env: {} });
    const err = await init.client.writeStdin(pid, Buffer.from("x"), { close: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toContain("start it with stdin: true");
    await init.client.signal(pid, 9);

    await expect(init.client.writeStdin(999999, Buffer.from("x"), { close: false })).rejects.toBeInstanceOf(
      NotFoundError,
    );

    const closer = await init.client.spawn({
      cmd: ["sh", "-c", "exec 0<&-; echo closed; sleep 300"],
      env: {},
      stdin: true,
    });
    expect(
      await eventually(
        async () =>
          (await collect(await init.client.logs(closer.pid, { follow: false }))).stdout === "closed\n",
      ),
    ).toBe(true);
    const e2 = await init.client.writeStdin(closer.pid, Buffer.from("x"), { close: false }).catch((e) => e);
    expect(e2).toBeInstanceOf(ConflictError);
    expect(e2.message).toContain("closed its stdin");
    await init.client.signal(closer.pid, 9);
  });

  it("a writer waiting on a process that never reads is answered when the process exits", async () => {
    const { pid } = await init.client.spawn({ cmd: ["sleep", "300"], env: {}, stdin: true });
    // more than the pipe holds: the write stalls until the process is killed
    const pending = init.client.writeStdin(pid, Buffer.alloc(1024 * 1024), { close: false }).catch((e) => e);
    await init.client.signal(pid, 9);
    const err = await pending;
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toMatch(/exited|closed its stdin/);
  });
});
