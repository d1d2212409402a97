import { NotFoundError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchFailureOf } from "./errors.js";
import { alive, collect, eventually, type InitUnderTest, startInit } from "./test-harness.js";

let init: InitUnderTest;
beforeAll(async () => {
  init = await startInit();
});
afterAll(async () => {
  await init?.stop();
});

const run = async (cmd: string[], o: { env?: Record<string, string>; cwd?: string } = {}) =>
  collect(await init.client.exec({ cmd, env: o.env ?? {}, ...(o.cwd ? { cwd: o.cwd } : {}) }));

describe("berth-init exec", () => {
  it("answers ping with the protocol version", async () => {
    expect(await init.client.ping()).toEqual({ version: "1" });
  });

  it("runs with exactly the given env and cwd, plus default PATH and HOME", async () => {
    const r = await run(["sh", "-c", 'echo "$FOO|$PATH|$HOME|$(pwd)"; env | wc -l'], {
      env: { FOO: "b a r" },
      cwd: "/tmp",
    });
    const [line, count] = r.stdout.trim().split("\n");
    expect(line).toBe("b a r|/usr/local/bin:/usr/bin:/bin|/home/user|/tmp");
    // FOO, PATH, HOME and PWD (set by sh): nothing leaks from the supervisor's own environment
    expect(Number(count)).toBe(4);
  });

  it("separates stdout and stderr and reports exit codes", async () => {
    const r = await run(["sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(r).toMatchObject({ stdout: "out\n", stderr: "err\n", exitCode: 7, signal: null });
    expect((await run(["true"])).exitCode).toBe(0);
  });

  it("reports a missing command or cwd as NotFoundError without starting anything", async () => {
    await expect(init.client.exec({ cmd: ["no-such-cmd-xyz"], env: {} })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(init.client.exec({ cmd: ["true"], env: {}, cwd: "/no/such/dir" })).rejects.toThrow(
      /no\/such\/dir/,
    );
  });

  it("says in which phase a process failed to start (chdir, exec), with errno and reason, not only in its message", async () => {
    const phaseOf = (p: Promise<unknown>) => p.then(() => undefined, launchFailureOf);
    expect(await phaseOf(init.client.exec({ cmd: ["true"], env: {}, cwd: "/no/such/dir" }))).toEqual({
      phase: "chdir",
      errno: "ENOENT",
      reason: "No such file or directory",
    });
    expect(await phaseOf(init.client.exec({ cmd: ["no-such-cmd-xyz"], env: {} }))).toEqual({
      phase: "exec",
      errno: "ENOENT",
      reason: "No such file or directory",
    });
    expect(await phaseOf(init.client.exec({ cmd: ["/tmp"], env: {} }))).toMatchObject({
      phase: "exec",
      errno: "EACCES",
    });
    expect(await phaseOf(init.client.spawn({ cmd: ["true"], env: {}, cwd: "/no/such/dir" }))).toMatchObject({
      phase: "chdir",
    });
    // Other failures carry no phase.
    expect(await phaseOf(init.client.stat("/no/such/file"))).toBeUndefined();
  });

  it("confines a process to its writable paths (Landlock): it reads anywhere, changes only there, and cannot signal outside", async () => {
    const mine = `${init.work}/mine`;
    const theirs = `${init.work}/theirs`;
    await run(["sh", "-c", `mkdir -p ${mine} ${theirs} && echo keep > ${theirs}/t`]);
    const other = await init.client.exec({ cmd: ["sleep", "30"], env: {} });
    const otherDone = collect(other);
    const r = collect(
      await init.client.exec({
        cmd: [
          "sh",
          "-c",
          [
            `echo a > ${mine}/a && echo wrote-mine`,
            `cat ${theirs}/t`,
            `echo b > ${theirs}/b 2>/dev/null || echo refused-create`,
            `echo x >> ${theirs}/t 2>/dev/null || echo refused-append`,
            `rm -f ${theirs}/t 2>/dev/null || echo refused-remove`,
            `mkdir ${theirs}/d 2>/dev/null || echo refused-mkdir`,
            `sh -c 'echo c > ${theirs}/c' 2>/dev/null || echo child-refused`,
            `kill ${other.pid} 2>/dev/null || echo refused-kill`,
          ].join("; "),
        ],
        env: {},
        writable: [mine, "/dev"],
      }),
    );
    const lines = (await r).stdout.trim().split("\n");
    expect(lines.slice(0, 7)).toEqual([
      "wrote-mine",
      "keep",
      "refused-create",
      "refused-append",
      "refused-remove",
      "refused-mkdir",
      "child-refused",
    ]);
    // Signals across domains are refused from Landlock ABI 6 (Linux 6.12) on.
    const abi =
      Number((await run(["sh", "-c", "uname -r | cut -d. -f1-2"])).stdout.trim().replace(".", "")) >= 612;
    if (abi) expect(lines[7]).toBe("refused-kill");
    expect((await run(["cat", `${theirs}/t`])).stdout).toBe("keep\n");
    other.kill(9);
    await otherDone;
    await expect(init.client.exec({ cmd: ["true"], env: {}, writable: ["relative/path"] })).rejects.toThrow(
      /absolute/,
    );
  });

  it("pipes stdin through and closes it on endStdin", async () => {
    const p = await init.client.exec({ cmd: ["sh", "-c", "wc -c; cat"], env: {}, stdin: true });
    const done = collect(p);
    const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
    p.writeStdin(big);
    p.endStdin();
    const r = await done;
    expect(r.stdout.trim()).toBe(String(big.length));
    expect(r.exitCode).toBe(0);
  });

  it("delivers signals to the process group and names the signal", async () => {
    const p = await init.client.exec({ cmd: ["sleep", "30"], env: {} });
    const done = collect(p);
    p.kill(15);
    expect(await done).toMatchObject({ exitCode: null, signal: "SIGTERM" });
    const q = await run(["sh", "-c", "kill -9 $$"]);
    expect(q).toMatchObject({ exitCode: null, signal: "SIGKILL" });
  });

  it("delivers 10 MB of stdout intact", async () => {
    const script = 'f=$(mktemp); head -c 10485760 /dev/urandom > "$f"; md5sum < "$f" >&2; cat "$f"; rm "$f"';
    const r = await run(["sh", "-c", script]);
    expect(r.out.length).toBe(10 * 1024 * 1024);
    const { createHash } = await import("node:crypto");
    const md5 = createHash("md5").update(r.out).digest("hex");
    expect(r.stderr).toContain(md5);
  });

  it("kills the whole process tree when the client disconnects", async () => {
    const p = await init.client.exec({
      cmd: ["sh", "-c", "sleep 300 & echo $!; sh -c 'sleep 301 & echo $!; wait' & wait"],
      env: {},
    });
    const pids: number[] = [];
    p.on("stdout", (b: Buffer) => pids.push(...b.toString().trim().split(/\s+/).map(Number)));
    expect(await eventually(() => pids.length === 2)).toBe(true);
    expect(pids.every(alive)).toBe(true);
    expect(alive(p.pid)).toBe(true);
    p.close();
    expect(await eventually(() => !alive(p.pid) && !pids.some(alive))).toBe(true);
  });

  it("runs exec'd commands in their own session", async () => {
    const r = await run(["cat", "/proc/self/stat"]);
    // fields after "(comm)": state ppid pgrp session
    const f = r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ");
    const pid = Number(r.stdout.split(" ")[0]);
    expect(Number(f[3])).toBe(pid);
  });

  it("gives a PTY: the tty echoes input, and resize changes stty size", async () => {
    const p = await init.client.exec({
      cmd: ["sh"],
      env: { PS1: "$ " },
      pty: { cols: 100, rows: 30 },
      stdin: true,
    });
    const done = collect(p);
    let out = "";
    p.on("stdout", (b: Buffer) => {
      out += b.toString();
    });
    p.writeStdin("stty size; tty\n");
    expect(await eventually(() => /30 100/.test(out) && /\/dev\/pts\//.test(out))).toBe(true);
    p.resize(132, 40);
    p.writeStdin("echo marker-$((6*7)); stty size\n");
    expect(await eventually(() => /40 132/.test(out))).toBe(true);
    expect(out).toContain("echo marker-$((6*7))"); // the terminal echoed what was typed
    expect(out).toContain("marker-42");
    p.writeStdin("exit 3\n");
    expect((await done).exitCode).toBe(3);
  });

  it("measures an exec of `true` round trip (reported, not asserted)", async () => {
    for (let i = 0; i < 20; i++) await run(["true"]);
    const n = 200;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run(["true"]);
    const ms = (performance.now() - t0) / n;
    console.log(`exec true round trip: ${ms.toFixed(3)} ms (mean of ${n})`);
    expect(ms).toBeGreaterThan(0);
  });
});
