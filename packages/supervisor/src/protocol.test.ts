import net from "node:net";
import {
  BerthError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  SandboxError,
} from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorFromErrno, launchFailureOf } from "./errors.js";
import { encodeFrame, type Frame, FrameDecoder } from "./frames.js";
import { type InitUnderTest, startInit } from "./test-harness.js";

describe("frames", () => {
  it("decodes frames split at any byte and joined in any way", () => {
    const wire = Buffer.concat([
      encodeFrame("r", { ok: true }),
      encodeFrame("1", Buffer.alloc(70000, 7)),
      encodeFrame("e"),
    ]);
    for (const step of [1, 3, 5, 4096, wire.length]) {
      const d = new FrameDecoder();
      const got: Frame[] = [];
      for (let i = 0; i < wire.length; i += step) got.push(...d.push(wire.subarray(i, i + step)));
      expect(got.map((f) => [f.type, f.payload.length])).toEqual([
        ["r", 11],
        ["1", 70000],
        ["e", 0],
      ]);
      expect(d.pendingBytes).toBe(0);
    }
  });

  it("rejects a frame over the limit as soon as its header arrives, and bad type bytes", () => {
    const d = new FrameDecoder(1024);
    expect(() => d.push(encodeFrame("1", Buffer.alloc(1025)).subarray(0, 5))).toThrow(SandboxError);
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0, 0]))).toThrow(SandboxError);
  });
});

describe("errorFromErrno", () => {
  it("maps errno names to Berth errors", () => {
    expect(errorFromErrno("ENOENT", "m", "/a")).toMatchObject({
      code: "not_found",
      details: { kind: "path", id: "/a" },
    });
    expect(errorFromErrno("ESRCH", "m", "12")).toMatchObject({
      code: "not_found",
      details: { kind: "process" },
    });
    expect(errorFromErrno("EACCES", "m")).toBeInstanceOf(ForbiddenError);
    expect(errorFromErrno("EPERM", "m")).toBeInstanceOf(ForbiddenError);
    for (const e of ["EISDIR", "ENOTDIR", "EINVAL", "ENAMETOOLONG", "ELOOP"])
      expect(errorFromErrno(e, "m")).toBeInstanceOf(InvalidRequestError);
    expect(errorFromErrno("EEXIST", "m")).toBeInstanceOf(ConflictError);
    expect(errorFromErrno("ENOTEMPTY", "m")).toBeInstanceOf(ConflictError);
    expect(errorFromErrno("ENOSPC", "m")).toMatchObject({ code: "disk_full", status: 507 });
    expect(errorFromErrno("EDQUOT", "m")).toBeInstanceOf(BerthError);
    expect(errorFromErrno("EIO", "m")).toBeInstanceOf(SandboxError);
    expect(errorFromErrno("ENOENT", "exec x: No such file")).toBeInstanceOf(NotFoundError);
    expect(errorFromErrno("EIO", `a\u0000b${"x".repeat(1000)}`).message.length).toBeLessThan(310);
  });
});

describe("berth-init against malformed input", () => {
  let init: InitUnderTest;
  beforeAll(async () => {
    init = await startInit();
  });
  afterAll(async () => {
    await init?.stop();
  });

  /** Sends raw bytes on a fresh connection; returns the frames received until init closes it. */
  const raw = (bytes: Buffer, halfClose = false) =>
    new Promise<Frame[]>((resolve, reject) => {
      const s = net.connect(init.socket);
      const d = new FrameDecoder();
      const frames: Frame[] = [];
      s.on("data", (c: Buffer) => frames.push(...d.push(c)));
      s.on("close", () => resolve(frames));
      s.on("error", reject);
      s.write(bytes);
      if (halfClose) s.end();
    });
  const errno = (f: Frame[]) => JSON.parse(f[0]?.payload.toString() ?? "{}").errno;

  it("answers EINVAL to bad JSON, wrong types and unknown ops, and keeps serving", async () => {
    const cases = [
      encodeFrame("q", "not json"),
      encodeFrame("q", '{"op":'),
      encodeFrame("q", "[1,2]"),
      encodeFrame("q", { op: 42 }),
      encodeFrame("q", { op: "nope" }),
      encodeFrame("x", { op: "ping" }),
      encodeFrame("q", { op: "exec", cmd: [] }),
      encodeFrame("q", { op: "exec", cmd: ["a\u0000b"], env: {} }),
      encodeFrame("q", { op: "exec", cmd: ["true"], env: { "A=B": "x" } }),
      encodeFrame("q", { op: "exec", cmd: ["true"], env: {}, pty: { cols: -1, rows: 5 } }),
      encodeFrame("q", { op: "stat", path: "" }),
      encodeFrame("q", { op: "stat", path: 5 }),
      encodeFrame("q", { op: "signal", pid: 1.5, signal: 9 }),
      encodeFrame("q", { op: "write", path: "/tmp/x", mode: 99999 }),
      encodeFrame("q", '{"op":"ping"}garbage'),
      encodeFrame("q", `${"[".repeat(5000)}${"]".repeat(5000)}`),
      encodeFrame("q", '{"op":"stat","path":"\\ud800\\u0000"}'),
    ];
    for (const c of cases) expect(errno(await raw(c)), c.toString()).toBe("EINVAL");
    expect(await init.client.ping()).toEqual({ version: "1" });
  });

  it("drops connections with oversized or truncated frames without answering garbage", async () => {
    const huge = Buffer.alloc(5);
    huge.write("q");
    huge.writeUInt32BE(0xffffffff, 1);
    expect(await raw(huge, true)).toEqual([]);
    expect(await raw(Buffer.from("q\u0000\u0000"), true)).toEqual([]);
    expect(await raw(encodeFrame("q", { op: "ping" }).subarray(0, 10), true)).toEqual([]);
    expect(init.proc.exitCode).toBeNull();
    expect(await init.client.ping()).toEqual({ version: "1" });
  });

  it("survives many clients that connect and vanish", async () => {
    await Promise.all(
      Array.from({ length: 100 }, () =>
        raw(encodeFrame("q", { op: "exec", cmd: ["sleep", "5"], env: {} }).subarray(0, 20), true),
      ),
    );
    expect(await init.client.ping()).toEqual({ version: "1" });
  });

  it("rejects answers from a hostile supervisor: oversized frames and invalid replies", async () => {
    const server = net.createServer((s) => {
      s.once("data", (d: Buffer) => {
        const q = JSON.parse(d.subarray(5).toString());
        if (q.op === "ping") s.end(encodeFrame("r", { ok: true, version: 7 }));
        else if (q.op === "stat") s.end(encodeFrame("r", { ok: true, entry: { name: "x", type: "weird" } }));
        else if (q.op === "exec" && q.cmd[0] === "landlock")
          s.end(
            encodeFrame("r", {
              ok: false,
              errno: "ENOSYS",
              phase: "landlock",
              reason: "Function not implemented",
              message: "landlock x: Function not implemented",
            }),
          );
        else if (q.op === "exec")
          s.end(
            encodeFrame("r", {
              ok: false,
              errno: "ENOENT",
              phase: "chdir-or-whatever",
              message: "chdir /x: gone",
            }),
          );
        else s.end(encodeFrame("r", Buffer.alloc(4096, 0x20)));
      });
    });
    const path = `${init.dir}/hostile.sock`;
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const { SupervisorClient } = await import("./client.js");
      const c = new SupervisorClient(
        () =>
          new Promise((resolve) => {
            const s = net.connect(path, () => resolve(s));
          }),
        { maxFrameBytes: 1024 },
      );
      await expect(c.ping()).rejects.toBeInstanceOf(SandboxError);
      await expect(c.stat("/x")).rejects.toBeInstanceOf(SandboxError);
      await expect(c.list("/x")).rejects.toThrow(/size limit/);
      // A launch phase is taken only from the protocol's list; anything else is no phase at all.
      const failure = (cmd: string) => c.exec({ cmd: [cmd], env: {} }).then(() => undefined, launchFailureOf);
      expect(await failure("landlock")).toEqual({
        phase: "landlock",
        errno: "ENOSYS",
        reason: "Function not implemented",
      });
      expect(await failure("other")).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it("gives up on a supervisor that takes a request and never answers, closing the connection", async () => {
    const open = new Set<net.Socket>();
    const server = net.createServer((s) => {
      open.add(s);
      s.resume(); // reads (and drops) the request, so it sees the client hang up
      s.on("close", () => open.delete(s));
    });
    const path = `${init.dir}/silent.sock`;
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const { SupervisorClient } = await import("./client.js");
      const connect = () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(path, () => resolve(s));
        });
      const c = new SupervisorClient(connect, { replyTimeoutMs: 300 });
      const t0 = Date.now();
      await expect(c.ping()).rejects.toThrow(/supervisor did not answer/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      await expect(c.read("/etc/hostname")).rejects.toBeInstanceOf(SandboxError);
      for (let i = 0; i < 50 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(open.size).toBe(0);
      // A connect that never completes is bounded too.
      const never = new SupervisorClient(() => new Promise<net.Socket>(() => {}), { replyTimeoutMs: 300 });
      await expect(never.ping()).rejects.toThrow(/did not answer/);
    } finally {
      server.close();
    }
  });
});
