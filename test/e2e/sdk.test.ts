// End-to-end: the SDK against a full real server (runc runtime, SQLite, loopback HTTP).
import {
  BerthError,
  ConflictError,
  NotFoundError,
  Sandbox,
  type SandboxConnectOptions,
  UnauthorizedError,
} from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: Awaited<ReturnType<typeof startTestServer>> | undefined;
let opts: SandboxConnectOptions;
let shared: Sandbox | undefined;

beforeAll(async () => {
  server = await startTestServer();
  opts = { apiUrl: server.url, apiKey: server.adminKey };
  shared = await Sandbox.create({ labels: { suite: "sdk-e2e" } }, opts);
});

afterAll(async () => {
  await shared?.delete().catch(() => {});
  await server?.stop();
});

const sb = (): Sandbox => {
  if (!shared) throw new Error("shared sandbox missing");
  return shared;
};

/** Polls until `cond` holds; the deadline only keeps a broken server from hanging the suite. */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  await waitFor(what, cond, Boolean, { timeoutMs: ms, everyMs: 25 });
}

describe("SDK end to end", () => {
  it("creates a sandbox, runs commands in it, lists, and deletes it", async () => {
    const box = await Sandbox.create(
      { resources: { memoryMiB: 256 }, env: { GREETING: "hello" }, labels: { purpose: "lifecycle" } },
      opts,
    );
    try {
      expect(box.id).toMatch(/^sb[a-z0-9]{16}$/);
      expect(box.state).toBe("running");
      expect(box.info.resources.memoryMiB).toBe(256);

      const hi = await box.exec("echo hi; echo $GREETING >&2");
      expect(hi).toMatchObject({ exitCode: 0, stdout: "hi\n", stderr: "hello\n", timedOut: false });

      const code = await box.exec(["sh", "-c", "exit 3"]);
      expect(code.exitCode).toBe(3);

      const withOpts = await box.exec(["sh", "-c", 'pwd; echo "$X"; cat'], {
        cwd: "/tmp",
        env: { X: "from-env" },
        stdin: "from-stdin",
      });
      expect(withOpts.stdout).toBe("/tmp\nfrom-env\nfrom-stdin");

      const listed = await Sandbox.list({ labels: { purpose: "lifecycle" } }, opts);
      expect(listed.map((s) => s.id)).toEqual([box.id]);
      const again = await Sandbox.connect(box.id, opts);
      expect(again.id).toBe(box.id);
      expect((await again.refresh()).labels).toEqual({ purpose: "lifecycle" });
    } finally {
      await box.delete();
    }
    // A deleted sandbox stays on record (state `deleted`) but cannot run anything.
    expect((await Sandbox.connect(box.id, opts)).state).toBe("deleted");
    await expect(box.exec("true")).rejects.toBeInstanceOf(ConflictError);
    await box.delete(); // idempotent
    await expect(Sandbox.connect("sbnosuchsandbox00", opts)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("streams exec output to callbacks as it is produced and still returns it all", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const res = await sb().exec("for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.05; done; exit 5", {
      onStdout: (t) => out.push(t),
      onStderr: (t) => err.push(t),
    });
    expect(out.join("")).toBe("out1\nout2\nout3\n");
    expect(err.join("")).toBe("err1\nerr2\nerr3\n");
    expect(res.exitCode).toBe(5);
    expect(res.stdout).toBe("out1\nout2\nout3\n");
    // The lines arrived as separate events, not as one buffer at the end.
    expect(out.length).toBeGreaterThan(1);
  });

  it("writes, reads, lists, moves and removes files", async () => {
    const f = sb().files;
    const bytes = new Uint8Array(256).map((_, i) => i);
    await f.mkdir("/tmp/sdk-files/sub");
    expect(await f.write("/tmp/sdk-files/a.txt", "héllo\n")).toMatchObject({
      path: "/tmp/sdk-files/a.txt",
      size: 7,
    });
    await f.write("/tmp/sdk-files/sub/bin", bytes);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("part1-"));
        c.enqueue(new TextEncoder().encode("part2"));
        c.close();
      },
    });
    await f.write("/tmp/sdk-files/streamed", stream);

    expect(await f.readText("/tmp/sdk-files/a.txt")).toBe("héllo\n");
    expect(await f.read("/tmp/sdk-files/sub/bin")).toEqual(bytes);
    expect(await f.readText("/tmp/sdk-files/streamed")).toBe("part1-part2");

    const entries = await f.list("/tmp/sdk-files");
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
    expect(Object.keys(byName).sort()).toEqual(["a.txt", "streamed", "sub"]);
    expect(byName["a.txt"]).toMatchObject({ type: "file", size: 7 });
    expect(byName.sub?.type).toBe("dir");

    await f.move("/tmp/sdk-files/a.txt", "/tmp/sdk-files/sub/b.txt");
    expect(await f.readText("/tmp/sdk-files/sub/b.txt")).toBe("héllo\n");
    await expect(f.read("/tmp/sdk-files/a.txt")).rejects.toBeInstanceOf(NotFoundError);

    await f.remove("/tmp/sdk-files", { recursive: true });
    expect((await sb().exec("test -e /tmp/sdk-files || echo gone")).stdout).toBe("gone\n");
  });

  it("starts a background process and follows its logs until it exits", async () => {
    const p = await sb().processes.start({ cmd: "echo started; sleep 0.2; echo done >&2; exit 4" });
    expect(p.pid).toBeGreaterThan(0);
    const seen: string[] = [];
    const logs = await sb().processes.logs(p.pid, { follow: true, onStdout: (t) => seen.push(t) });
    expect(logs).toMatchObject({ stdout: "started\n", stderr: "done\n", state: "exited", exitCode: 4 });
    expect(seen.join("")).toBe("started\n");
    expect(await sb().processes.get(p.pid)).toMatchObject({ pid: p.pid, state: "exited", exitCode: 4 });
    expect((await sb().processes.list()).map((x) => x.pid)).toContain(p.pid);
    const snapshot = await sb().processes.logs(p.pid);
    expect(snapshot).toMatchObject({ stdout: "started\n", stderr: "done\n", exitCode: 4 });
  });

  it("signals a running process", async () => {
    const p = await sb().processes.start({ cmd: ["sleep", "300"] });
    expect((await sb().processes.get(p.pid)).state).toBe("running");
    await sb().processes.signal(p.pid, "SIGTERM");
    const logs = await sb().processes.logs(p.pid, { follow: true });
    expect(logs.state).toBe("exited");
    expect(logs.exitCode).not.toBe(0);
  });

  it("writes to a background process's kept stdin and closes it; ConflictError without stdin", async () => {
    const p = await sb().processes.start({ cmd: "cat; echo end", stdin: true });
    expect(await sb().processes.writeStdin(p.pid, "text\n")).toEqual({
      pid: p.pid,
      written: 5,
      closed: false,
    });
    expect(await sb().processes.writeStdin(p.pid, new Uint8Array([0, 255, 10]))).toMatchObject({
      written: 3,
    });
    expect(await sb().processes.closeStdin(p.pid)).toEqual({ pid: p.pid, written: 0, closed: true });
    const logs = await sb().processes.logs(p.pid, { follow: true });
    expect(logs).toMatchObject({ state: "exited", exitCode: 0 });
    expect(logs.stdout.startsWith("text\n\u0000")).toBe(true);
    expect(logs.stdout.endsWith("\nend\n")).toBe(true);

    const plain = await sb().processes.start({ cmd: ["sleep", "300"] });
    const err = await sb()
      .processes.writeStdin(plain.pid, "x")
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toContain("start it with stdin: true");
    await sb().processes.signal(plain.pid, "SIGKILL");
  });

  it("runs an interactive terminal: typed commands run in the shell and it exits with their code", async () => {
    let output = "";
    const decoder = new TextDecoder();
    const pty = await sb().pty({
      cols: 100,
      rows: 30,
      onData: (b) => (output += decoder.decode(b, { stream: true })),
    });
    try {
      pty.resize(120, 40);
      // Only a shell that ran the line prints "hi-2"; the terminal's echo shows "hi-$((1+1))".
      pty.write("echo hi-$((1+1)); stty size\n");
      await until(() => output.includes("hi-2"), "the shell's answer");
      await until(() => output.includes("40 120"), "the resized terminal size");
      pty.write("exit 7\n");
      expect(await pty.wait()).toBe(7);
    } finally {
      pty.close();
    }
  });

  it("answers typed errors: NotFoundError for an unknown id, UnauthorizedError for a bad key", async () => {
    const err = await Sandbox.connect("sbaaaaaaaaaaaaaaaa", opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: "not_found", status: 404 });
    await expect(Sandbox.connect("not-an-id", opts)).rejects.toBeInstanceOf(BerthError);
    await expect(Sandbox.list({}, { apiUrl: server?.url, apiKey: "bk_wrong" })).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });
});
