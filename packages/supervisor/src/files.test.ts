import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { PassThrough, Readable } from "node:stream";
import { ConflictError, ForbiddenError, InvalidRequestError, NotFoundError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InitUnderTest, startInit } from "./test-harness.js";
import type { WatchEvent } from "./watch-stream.js";

// As uid 1000, like in a sandbox: the kernel's permission checks apply.
let init: InitUnderTest;
let w: string;
beforeAll(async () => {
  init = await startInit({ uid: 1000 });
  w = init.work;
});
afterAll(async () => {
  await init?.stop();
});

/** Hands what the test set up to the supervisor's user. */
function own(path: string): void {
  execFileSync("chown", ["-R", "1000:1000", path]);
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe("berth-init files", () => {
  it("writes, stats, reads and lists files; write creates parents and sets the mode", async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 7, 0x42);
    expect(await init.client.write(`${w}/a/b/c.bin`, body, { mode: 0o600 })).toEqual({ size: body.length });
    expect(readFileSync(`${w}/a/b/c.bin`).equals(body)).toBe(true);
    expect(statSync(`${w}/a/b/c.bin`).uid).toBe(1000);
    const e = await init.client.stat(`${w}/a/b/c.bin`);
    expect(e).toMatchObject({ name: "c.bin", type: "file", size: body.length, mode: 0o600 });
    expect(Date.parse(e.mtime)).toBeGreaterThan(0);
    const r = await init.client.read(`${w}/a/b/c.bin`);
    expect(r.size).toBe(body.length);
    expect((await readAll(r.stream)).equals(body)).toBe(true);
    await init.client.write(`${w}/a/b/z.txt`, Readable.from([Buffer.from("he"), Buffer.from("llo")]));
    expect(readFileSync(`${w}/a/b/z.txt`, "utf8")).toBe("hello");
    symlinkSync("/etc", `${w}/a/b/link`);
    mkdirSync(`${w}/a/b/dir`);
    const names = (await init.client.list(`${w}/a/b`)).map((x) => [x.name, x.type]);
    expect(names).toEqual([
      ["c.bin", "file"],
      ["dir", "dir"],
      ["link", "symlink"],
      ["z.txt", "file"],
    ]);
    expect((await init.client.stat(`${w}/a/b/link`)).type).toBe("symlink");
  });

  it("lists big directories in several frames, and escapes odd names", async () => {
    mkdirSync(`${w}/many`);
    const long = "n".repeat(200);
    for (let i = 0; i < 4000; i++) writeFileSync(`${w}/many/file-${long}-${String(i).padStart(5, "0")}`, "");
    writeFileSync(Buffer.from(`${w}/many/bad-\xff-"\n\u0001`, "latin1"), "");
    const entries = await init.client.list(`${w}/many`);
    expect(entries.length).toBe(4001);
    expect(entries[0]!.name).toBe('bad-\ufffd-"\n\u0001');
    expect(entries.slice(1).map((e) => e.name.slice(-5))).toEqual(
      Array.from({ length: 4000 }, (_, i) => String(i).padStart(5, "0")),
    );
  });

  it("maps errors: ENOENT, EISDIR, ENOTDIR, ENOTEMPTY, EACCES, EEXIST", async () => {
    await expect(init.client.stat(`${w}/nope`)).rejects.toMatchObject({
      code: "not_found",
      details: { kind: "path" },
    });
    await expect(init.client.read(`${w}/nope`)).rejects.toBeInstanceOf(NotFoundError);
    await expect(init.client.list(`${w}/nope`)).rejects.toBeInstanceOf(NotFoundError);
    await expect(init.client.remove(`${w}/nope`, { recursive: true })).rejects.toBeInstanceOf(NotFoundError);
    await init.client.mkdir(`${w}/d1/d2`);
    await init.client.mkdir(`${w}/d1/d2`); // fine when it exists
    await expect(init.client.read(`${w}/d1`)).rejects.toBeInstanceOf(InvalidRequestError); // EISDIR
    await expect(init.client.write(`${w}/d1`, Buffer.from("x"))).rejects.toBeInstanceOf(InvalidRequestError);
    await init.client.write(`${w}/d1/f`, Buffer.from("x"));
    await expect(init.client.list(`${w}/d1/f`)).rejects.toMatchObject({ details: { errno: "ENOTDIR" } });
    await expect(init.client.mkdir(`${w}/d1/f`)).rejects.toBeInstanceOf(ConflictError);
    await expect(init.client.remove(`${w}/d1`, { recursive: false })).rejects.toMatchObject({
      code: "conflict",
      details: { errno: "ENOTEMPTY" },
    });
    await expect(init.client.read("/root/.bashrc")).rejects.toBeInstanceOf(ForbiddenError);
    await expect(init.client.write("/etc/berth-test", Buffer.from("x"))).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    await expect(init.client.read("/dev/zero")).rejects.toBeInstanceOf(InvalidRequestError); // not a regular file
  });

  it("moves and removes files and directories", async () => {
    await init.client.write(`${w}/m/src.txt`, Buffer.from("move me"));
    await init.client.move(`${w}/m/src.txt`, `${w}/m/new/dir/dst.txt`);
    expect(readFileSync(`${w}/m/new/dir/dst.txt`, "utf8")).toBe("move me");
    expect(existsSync(`${w}/m/src.txt`)).toBe(false);
    await expect(init.client.move(`${w}/m/src.txt`, `${w}/m/x`)).rejects.toBeInstanceOf(NotFoundError);
    await init.client.remove(`${w}/m/new/dir/dst.txt`, { recursive: false });
    await init.client.remove(`${w}/m/new/dir`, { recursive: false });
    await init.client.remove(`${w}/m`, { recursive: true });
    expect(existsSync(`${w}/m`)).toBe(false);
  });

  it("recursive remove never follows a symlink to a directory outside", async () => {
    mkdirSync(`${w}/outside/deep`, { recursive: true });
    writeFileSync(`${w}/outside/deep/keep.txt`, "precious");
    mkdirSync(`${w}/tree/sub`, { recursive: true });
    writeFileSync(`${w}/tree/sub/f`, "x");
    symlinkSync(`${w}/outside`, `${w}/tree/sub/escape`);
    symlinkSync(`${w}/outside`, `${w}/tree-link`);
    own(`${w}/tree`);
    own(`${w}/outside`);
    await init.client.remove(`${w}/tree`, { recursive: true });
    expect(existsSync(`${w}/tree`)).toBe(false);
    // a symlink given as the path itself is removed, not its target
    await init.client.remove(`${w}/tree-link`, { recursive: true });
    expect(existsSync(`${w}/tree-link`)).toBe(false);
    expect(readFileSync(`${w}/outside/deep/keep.txt`, "utf8")).toBe("precious");
  });

  it("an upload whose body fails while the request is still being opened is an error, not a crash", async () => {
    mkdirSync(`${w}/early`);
    own(`${w}/early`);
    const body = new PassThrough();
    const done = init.client.write(`${w}/early/f.txt`, body);
    // Nothing reads the body yet: the client still waits for berth-init's first reply.
    body.destroy(new Error("client went away early"));
    await expect(done).rejects.toThrow("client went away early");
    expect(await eventually(() => readdirSync(`${w}/early`).length === 0)).toBe(true);
  });

  it("an upload aborted mid-way leaves neither the file nor a temp file", async () => {
    mkdirSync(`${w}/up`);
    writeFileSync(`${w}/up/existing.txt`, "old");
    own(`${w}/up`);
    const body = new PassThrough();
    const done = init.client.write(`${w}/up/existing.txt`, body);
    body.write(Buffer.alloc(512 * 1024, 1));
    // wait for the temp file to appear, then fail the body
    expect(await eventually(() => readdirSync(`${w}/up`).length === 2)).toBe(true);
    body.destroy(new Error("client went away"));
    await expect(done).rejects.toThrow("client went away");
    expect(await eventually(() => readdirSync(`${w}/up`).length === 1)).toBe(true);
    expect(readFileSync(`${w}/up/existing.txt`, "utf8")).toBe("old");
    // a fresh upload of a new file, aborted: nothing at all remains
    const b2 = new PassThrough();
    const d2 = init.client.write(`${w}/up/new/file.txt`, b2);
    b2.write("partial");
    expect(await eventually(() => existsSync(`${w}/up/new`) && readdirSync(`${w}/up/new`).length === 1)).toBe(
      true,
    );
    b2.destroy(new Error("abort"));
    await expect(d2).rejects.toThrow("abort");
    expect(await eventually(() => readdirSync(`${w}/up/new`).length === 0)).toBe(true);
  });

  it("reports file system events from watch, including in new subdirectories", async () => {
    mkdirSync(`${w}/watched`);
    own(`${w}/watched`);
    const ws = await init.client.watch(`${w}/watched`, { recursive: true });
    const events: WatchEvent[] = [];
    ws.on("event", (e: WatchEvent) => events.push(e));
    await new Promise((r) => setImmediate(r));
    const has = (type: string, path: string) => events.some((e) => e.type === type && e.path === path);
    writeFileSync(`${w}/watched/a.txt`, "1");
    expect(await eventually(() => has("create", `${w}/watched/a.txt`))).toBe(true);
    writeFileSync(`${w}/watched/a.txt`, "2");
    expect(await eventually(() => has("modify", `${w}/watched/a.txt`))).toBe(true);
    mkdirSync(`${w}/watched/sub`);
    expect(await eventually(() => has("create", `${w}/watched/sub`))).toBe(true);
    // The new directory's watch is added after its event: touch files in it until one is reported.
    let probes = 0;
    expect(
      await eventually(() => {
        writeFileSync(`${w}/watched/sub/probe${probes++}`, "");
        return events.some((e) => e.type === "create" && e.path.startsWith(`${w}/watched/sub/probe`));
      }),
    ).toBe(true);
    writeFileSync(`${w}/watched/sub/b.txt`, "x");
    expect(await eventually(() => has("create", `${w}/watched/sub/b.txt`))).toBe(true);
    await init.client.remove(`${w}/watched/a.txt`, { recursive: false });
    expect(await eventually(() => has("delete", `${w}/watched/a.txt`))).toBe(true);
    ws.close();
    await expect(init.client.watch(`${w}/nope`, { recursive: false })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("runs non-dumpable: its /proc entries belong to root although it runs as uid 1000", () => {
    const pid = init.proc.pid!; // setpriv execs berth-init in place
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\s+1000\s/m);
    expect(lstatSync(`/proc/${pid}/environ`).uid).toBe(0);
  });
});
