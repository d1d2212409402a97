// End-to-end: E2B's own `e2b` npm package, unchanged, against a real Berth server (runc, SQLite,
// loopback HTTP). Only the two URLs and the key point it at Berth.

import { readFileSync } from "node:fs";
import { request } from "node:http";
import {
  CommandExitError,
  type ConnectionOpts,
  FilesystemEventType,
  FileType,
  NotFoundError,
  Sandbox,
  TimeoutError,
} from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBerth } from "../support/cli.js";
import { startTestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: Awaited<ReturnType<typeof startTestServer>> | undefined;
const PREVIEW_DOMAIN = "e2b-preview.test";
let opts: ConnectionOpts;
const made: Sandbox[] = [];

/** A key in E2B's format for the admin's tenant, made through Berth's API. */
async function e2bKey(url: string, berthKey: string): Promise<string> {
  const res = await fetch(`${url}/v1/e2b/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${berthKey}` },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

/** A GET to the server with another Host header (preview hosts have no DNS here). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: "/", headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function create(o: Parameters<typeof Sandbox.create>[1] = {}, template = "base"): Promise<Sandbox> {
  const sb = await Sandbox.create(template, { ...opts, timeoutMs: 600_000, ...o });
  made.push(sb);
  return sb;
}

beforeAll(async () => {
  // A preview domain: getHost(port) names an exposed port's preview host.
  server = await startTestServer({ env: { BERTH_PREVIEW_DOMAIN: PREVIEW_DOMAIN } });
  // The two lines a user pastes, from `berth e2b env` (which makes the key).
  const run = await runBerth(server, ["e2b", "env"]);
  expect(run).toMatchObject({ code: 0, stderr: "" });
  const vars = Object.fromEntries(
    run.stdout
      .trim()
      .replace(/^export /, "")
      .split(" ")
      .map((kv) => kv.split("=") as [string, string]),
  );
  expect(vars).toEqual({
    E2B_API_URL: `${server.url}/e2b`,
    E2B_SANDBOX_URL: `${server.url}/e2b/envd`,
    E2B_API_KEY: expect.stringMatching(/^e2b_[0-9a-f]{40}$/),
  });
  opts = { apiKey: vars.E2B_API_KEY, apiUrl: vars.E2B_API_URL, sandboxUrl: vars.E2B_SANDBOX_URL };
  // An E2B-format key given to it is used as it is.
  const again = await runBerth(server, ["e2b", "env", "--key", vars.E2B_API_KEY as string]);
  expect(again.stdout).toContain(`E2B_API_KEY=${vars.E2B_API_KEY}`);
});

afterAll(async () => {
  for (const sb of made) await sb.kill().catch(() => {});
  await server?.stop();
});

describe("the e2b SDK against Berth", () => {
  it("creates with metadata, lists by metadata and state, gets info, sets the timeout, kills", async () => {
    const tag = `t${Date.now()}`;
    const a = await create({ metadata: { suite: tag, which: "a" }, envs: { GREETING: "hello" } });
    const b = await create({ metadata: { suite: tag, which: "b" } });
    expect(a.sandboxId).toMatch(/^sb[a-z0-9]{16}$/);

    const mine = await Sandbox.list({ ...opts, query: { metadata: { suite: tag } } }).nextItems();
    expect(mine.map((s) => s.sandboxId).sort()).toEqual([a.sandboxId, b.sandboxId].sort());
    const onlyA = await Sandbox.list({
      ...opts,
      query: { metadata: { suite: tag, which: "a" } },
    }).nextItems();
    expect(onlyA.map((s) => s.sandboxId)).toEqual([a.sandboxId]);
    expect(onlyA[0]).toMatchObject({
      state: "running",
      templateId: "base",
      metadata: { suite: tag, which: "a" },
    });

    // Pages of one: the paginator follows X-Next-Token to the end.
    const pager = Sandbox.list({ ...opts, limit: 1, query: { metadata: { suite: tag } } });
    const seen: string[] = [];
    while (pager.hasNext) seen.push(...(await pager.nextItems()).map((s) => s.sandboxId));
    expect(seen.sort()).toEqual([a.sandboxId, b.sandboxId].sort());

    // envVars reach commands; the info reports the sandbox as it is.
    expect((await a.commands.run("echo $GREETING")).stdout).toBe("hello\n");
    const info = await a.getInfo();
    expect(info).toMatchObject({
      sandboxId: a.sandboxId,
      state: "running",
      metadata: { suite: tag, which: "a" },
    });

    // setTimeout counts from now (Berth stores it from creation: the end moves, both ways).
    const before = Date.now();
    await a.setTimeout(30_000);
    const end = (await a.getInfo()).endAt.getTime();
    expect(end).toBeGreaterThanOrEqual(before + 29_000);
    expect(end).toBeLessThanOrEqual(Date.now() + 31_000);

    await b.kill();
    expect(await b.isRunning()).toBe(false);
    const left = await Sandbox.list({ ...opts, query: { metadata: { suite: tag } } }).nextItems();
    expect(left.map((s) => s.sandboxId)).toEqual([a.sandboxId]);
    await expect(Sandbox.getInfo(b.sandboxId, opts)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("runs commands: foreground, env and cwd, exit codes, stdin, background with connect and kill, timeouts", async () => {
    const sb = await create();
    const hi = await sb.commands.run('echo out; echo err >&2; echo "$X"; pwd', {
      envs: { X: "from-env" },
      cwd: "/tmp",
    });
    expect(hi).toMatchObject({ exitCode: 0, stdout: "out\nfrom-env\n/tmp\n", stderr: "err\n" });
    // The default working directory is the user's home, as in E2B.
    expect((await sb.commands.run("pwd; whoami")).stdout).toBe("/home/user\nuser\n");

    const failed = await sb.commands.run("exit 3").catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CommandExitError);
    expect((failed as CommandExitError).exitCode).toBe(3);

    // Streamed output arrives through the callbacks as it is written.
    const chunks: string[] = [];
    await sb.commands.run("for i in 1 2 3; do echo line$i; done", { onStdout: (d) => void chunks.push(d) });
    expect(chunks.join("")).toBe("line1\nline2\nline3\n");

    // stdin: sent in two parts, then closed: cat sees all of it and ends.
    const cat = await sb.commands.run("cat", { background: true, stdin: true });
    await sb.commands.sendStdin(cat.pid, "hello ");
    await sb.commands.sendStdin(cat.pid, "world");
    await sb.commands.closeStdin(cat.pid);
    expect((await cat.wait()).stdout).toBe("hello world");

    // Background: disconnect, find it in the list, reconnect by pid, then kill it.
    const bg = await sb.commands.run("echo started; sleep 600", { background: true, timeoutMs: 0 });
    await waitFor(
      "the background command's first line",
      () => bg.stdout,
      (s) => s === "started\n",
    );
    await bg.disconnect();
    const listed = await sb.commands.list();
    expect(listed.map((p) => p.pid)).toContain(bg.pid);
    expect(listed.find((p) => p.pid === bg.pid)).toMatchObject({ cmd: "/bin/bash" });
    const again = await sb.commands.connect(bg.pid, { timeoutMs: 0 });
    expect(await sb.commands.kill(bg.pid)).toBe(true);
    const killed = await again.wait().catch((e: unknown) => e);
    expect(killed).toBeInstanceOf(CommandExitError);
    expect((await sb.commands.list()).map((p) => p.pid)).not.toContain(bg.pid);
    expect(await sb.commands.kill(bg.pid)).toBe(false);

    // A command past its timeout fails with TimeoutError, and the process is gone afterwards.
    const slow = await sb.commands.run("sleep 30", { background: true, timeoutMs: 1000 });
    await expect(slow.wait()).rejects.toBeInstanceOf(TimeoutError);
    await waitFor(
      "the timed-out command to be killed",
      async () => (await sb.commands.list()).map((p) => p.pid),
      (pids) => !pids.includes(slow.pid),
    );
  });

  it("reads and writes files: text, binary, gzip, list, rename, remove, exists, info, mkdir, watch", async () => {
    const sb = await create();
    const w = await sb.files.write("notes/a.txt", "hello file");
    expect(w).toMatchObject({ name: "a.txt", path: "/home/user/notes/a.txt" });
    expect(await sb.files.read("/home/user/notes/a.txt")).toBe("hello file");

    const bytes = new Uint8Array(256).map((_, i) => i);
    await sb.files.write("/tmp/bin.dat", bytes.buffer);
    expect(Buffer.from(await sb.files.read("/tmp/bin.dat", { format: "bytes" }))).toEqual(Buffer.from(bytes));
    // gzip both ways: the upload is gunzipped by the server, the download gzipped on request.
    const big = "compress me ".repeat(10_000);
    await sb.files.write("/tmp/big.txt", big, { gzip: true });
    expect((await sb.commands.run("wc -c < /tmp/big.txt")).stdout.trim()).toBe(String(big.length));
    expect(await sb.files.read("/tmp/big.txt", { gzip: true })).toBe(big);

    // Several files in one multipart upload.
    await sb.files.write([
      { path: "/tmp/multi/1.txt", data: "one" },
      { path: "/tmp/multi/2.txt", data: "two" },
    ]);
    const entries = await sb.files.list("/tmp/multi");
    expect(entries.map((e) => [e.name, e.type, e.path])).toEqual([
      ["1.txt", FileType.FILE, "/tmp/multi/1.txt"],
      ["2.txt", FileType.FILE, "/tmp/multi/2.txt"],
    ]);
    const info = await sb.files.getInfo("/tmp/multi/1.txt");
    expect(info).toMatchObject({ name: "1.txt", type: FileType.FILE, size: 3, permissions: "-rw-r--r--" });
    expect((await sb.files.getInfo("/tmp/multi")).type).toBe(FileType.DIR);

    expect(await sb.files.makeDir("/tmp/newdir/sub")).toBe(true);
    expect(await sb.files.makeDir("/tmp/newdir/sub")).toBe(false);
    await sb.files.rename("/tmp/multi/1.txt", "/tmp/newdir/moved.txt");
    expect(await sb.files.exists("/tmp/multi/1.txt")).toBe(false);
    expect(await sb.files.read("/tmp/newdir/moved.txt")).toBe("one");
    await sb.files.remove("/tmp/newdir");
    expect(await sb.files.exists("/tmp/newdir")).toBe(false);
    await sb.files.remove("/tmp/newdir"); // removing what is not there succeeds, as in E2B
    await sb.commands.run("ln -s /tmp/multi/2.txt /tmp/link");
    expect(await sb.files.getInfo("/tmp/link")).toMatchObject({
      type: FileType.SYMLINK,
      symlinkTarget: "/tmp/multi/2.txt",
    });
    await expect(sb.files.read("/tmp/nope.txt")).rejects.toThrow(/not found/i);

    // Watch: events for a file made and removed under the watched directory.
    await sb.files.makeDir("/tmp/watched");
    const events: { name: string; type: string }[] = [];
    const handle = await sb.files.watchDir("/tmp/watched", (e) => void events.push(e), { recursive: true });
    await sb.files.write("/tmp/watched/x.txt", "x");
    await sb.files.remove("/tmp/watched/x.txt");
    const seen = (es: typeof events) =>
      [FilesystemEventType.CREATE, FilesystemEventType.WRITE, FilesystemEventType.REMOVE].every((t) =>
        es.some((e) => e.name === "x.txt" && e.type === t),
      );
    await waitFor("create, write and remove events", () => events, seen);
    await handle.stop();
  });

  it("runs a PTY: input, output, resize, kill", async () => {
    const sb = await create();
    let out = "";
    const dec = new TextDecoder();
    const term = await sb.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => {
        out += dec.decode(d);
      },
      timeoutMs: 0,
    });
    await sb.pty.sendInput(term.pid, new TextEncoder().encode("stty size; echo pty-$((6*7))\n"));
    await waitFor(
      "the PTY's answer",
      () => out,
      (s) => s.includes("24 80") && s.includes("pty-42"),
    );
    await sb.pty.resize(term.pid, { cols: 100, rows: 30 });
    await sb.pty.sendInput(term.pid, new TextEncoder().encode("stty size\n"));
    await waitFor(
      "the new size",
      () => out,
      (s) => s.includes("30 100"),
    );
    expect(await sb.pty.kill(term.pid)).toBe(true);
    await expect(term.wait()).rejects.toBeInstanceOf(CommandExitError);
  });

  it("pauses with files kept and resumes on connect with a new boot id; the data plane answers 502 while paused", async () => {
    const sb = await create();
    await sb.files.write("/home/user/kept.txt", "still here");
    const bootId = async (s: Sandbox) => (await s.commands.run("cat /proc/sys/kernel/random/boot_id")).stdout;
    const bootBefore = await bootId(sb);
    expect(bootBefore).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/);
    // The sandbox's own, not the host kernel's (which every container would otherwise share).
    expect(bootBefore).not.toBe(readFileSync("/proc/sys/kernel/random/boot_id", "utf8"));
    // Read-only, like the kernel's.
    await expect(sb.commands.run("echo x > /proc/sys/kernel/random/boot_id")).rejects.toBeInstanceOf(
      CommandExitError,
    );
    expect(await sb.pause()).toBe(true);
    expect(await Sandbox.pause(sb.sandboxId, opts)).toBe(false);
    expect((await sb.getInfo()).state).toBe("paused");
    expect(await sb.isRunning()).toBe(false);
    const listed = await Sandbox.list({ ...opts, query: { state: ["paused"] } }).nextItems();
    expect(listed.map((s) => s.sandboxId)).toContain(sb.sandboxId);

    const back = await Sandbox.connect(sb.sandboxId, opts);
    expect((await back.getInfo()).state).toBe("running");
    expect(await back.files.read("/home/user/kept.txt")).toBe("still here");
    expect((await back.commands.run("echo awake")).stdout).toBe("awake\n");
    // A filesystem-only pause is a reboot: E2B's SDK tests read a new boot id after connect.
    const bootAfter = await bootId(back);
    expect(bootAfter).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(bootAfter).not.toBe(bootBefore);
  });

  it("forks a sandbox (files, env and settings) and makes sandboxes from snapshots", async () => {
    const src = await create({ metadata: { role: "source" }, envs: { FROM: "source" } });
    await src.files.write("/home/user/state.txt", "forked state");
    const forks = await Sandbox.fork(src.sandboxId, { ...opts, count: 2, timeoutMs: 600_000 });
    expect(forks).toHaveLength(2);
    for (const f of forks) {
      if (!(f instanceof Sandbox)) throw f;
      made.push(f);
      expect(f.sandboxId).not.toBe(src.sandboxId);
      expect(await f.files.read("/home/user/state.txt")).toBe("forked state");
      expect((await f.commands.run("echo $FROM")).stdout).toBe("source\n");
      expect((await f.getInfo()).metadata).toEqual({ role: "source" });
    }
    // The copies are separate: a change in one is not seen by the others.
    await (forks[0] as Sandbox).files.write("/home/user/state.txt", "changed");
    expect(await (forks[1] as Sandbox).files.read("/home/user/state.txt")).toBe("forked state");
    expect(await src.files.read("/home/user/state.txt")).toBe("forked state");

    const snap = await src.createSnapshot({ name: "e2b-suite-snap" });
    expect(snap.snapshotId).toMatch(/^sn/);
    const listed = await Sandbox.listSnapshots({ ...opts, sandboxId: src.sandboxId }).nextItems();
    expect(listed.map((s) => s.snapshotId)).toContain(snap.snapshotId);
    const fromSnap = await create({}, snap.snapshotId);
    expect(await fromSnap.files.read("/home/user/state.txt")).toBe("forked state");
    expect(await Sandbox.deleteSnapshot(snap.snapshotId, opts)).toBe(true);
    const after = await Sandbox.listSnapshots({ ...opts, sandboxId: src.sandboxId }).nextItems();
    expect(after.map((s) => s.snapshotId)).not.toContain(snap.snapshotId);
  });

  it("refuses a wrong access token and another tenant's key; root works as root of the sandbox's own user namespace", async () => {
    const sb = await create();
    const res = await fetch(`${server?.url}/e2b/envd/process.Process/List`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "e2b-sandbox-id": sb.sandboxId,
        "x-access-token": "not-the-token",
      },
      body: "{}",
    });
    expect(res.status).toBe(401);
    const health = await fetch(`${server?.url}/e2b/envd/health`, {
      headers: { "e2b-sandbox-id": sb.sandboxId },
    });
    expect(health.status).toBe(401);

    // A key of another tenant does not see the sandbox at all.
    const admin = { authorization: `Bearer ${server?.adminKey}`, "content-type": "application/json" };
    const k = await fetch(`${server?.url}/v1/keys`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ tenant: "e2b-other" }),
    });
    expect(k.status).toBe(201);
    const otherBerthKey = ((await k.json()) as { key: string }).key;
    const otherKey = await e2bKey(server?.url ?? "", otherBerthKey);
    const other = { ...opts, apiKey: otherKey };
    await expect(Sandbox.getInfo(sb.sandboxId, other)).rejects.toBeInstanceOf(NotFoundError);
    await expect(Sandbox.kill(sb.sandboxId, other)).resolves.toBe(false);
    expect(await Sandbox.list(other).nextItems()).toEqual([]);
    expect(await sb.isRunning()).toBe(true);

    // E2B sandboxes are root sandboxes where the host can make them (BERTH_E2B_ROOT).
    expect((await sb.commands.run("id -u; echo $HOME; pwd", { user: "root" })).stdout).toBe(
      "0\n/root\n/root\n",
    );
    expect((await sb.commands.run("id -u")).stdout).toBe("1000\n");
    await sb.files.write("/etc/e2b-root.txt", "x", { user: "root" });
    await sb.files.write("by-root.txt", "x", { user: "root" });
    expect(
      (await sb.commands.run("stat -c %U /etc/e2b-root.txt /root/by-root.txt", { user: "root" })).stdout,
    ).toBe("root\nroot\n");
    await expect(sb.files.write("/etc/e2b-user.txt", "x")).rejects.toThrow(/denied/i);
  });

  it("keeps file metadata as user.e2b.* xattrs: write, info, list, rename, overwrite, set in the sandbox", async () => {
    const sb = await create();
    const meta = { author: "mish", purpose: "upload" };
    const w = await sb.files.write("meta/a.txt", "with metadata", { metadata: meta });
    expect(w).toMatchObject({ path: "/home/user/meta/a.txt", metadata: meta });
    expect((await sb.files.getInfo("meta/a.txt")).metadata).toEqual(meta);
    // The octet-stream upload carries it too; a multi-file upload puts it on every file.
    await sb.files.write("meta/b.txt", "raw", { metadata: { k: "v" }, useOctetStream: true });
    expect((await sb.files.getInfo("meta/b.txt")).metadata).toEqual({ k: "v" });
    const both = await sb.files.writeFiles(
      [
        { path: "meta/m1.txt", data: "1" },
        { path: "meta/m2.txt", data: "2" },
      ],
      { metadata: { source: "suite" } },
    );
    expect(both.map((i) => i.metadata)).toEqual([{ source: "suite" }, { source: "suite" }]);
    const listed = await sb.files.list("meta");
    expect(Object.fromEntries(listed.map((e) => [e.name, e.metadata]))).toEqual({
      "a.txt": meta,
      "b.txt": { k: "v" },
      "m1.txt": { source: "suite" },
      "m2.txt": { source: "suite" },
    });
    // Kept across a rename (same inode); gone after an overwrite without metadata (new inode).
    expect((await sb.files.rename("meta/a.txt", "meta/renamed.txt")).metadata).toEqual(meta);
    expect((await sb.files.write("meta/renamed.txt", "again")).metadata).toBeUndefined();
    expect((await sb.files.getInfo("meta/renamed.txt")).metadata).toBeUndefined();
    // The xattrs are the store: one set inside the sandbox shows, one read inside shows ours.
    await sb.commands.run(
      `python3 -c "import os; os.setxattr('/home/user/meta/b.txt', 'user.e2b.extra', b'inside')"`,
    );
    expect((await sb.files.getInfo("meta/b.txt")).metadata).toEqual({ k: "v", extra: "inside" });
    const inside = await sb.commands.run(
      `python3 -c "import os; print(os.getxattr('/home/user/meta/m1.txt', 'user.e2b.source').decode())"`,
    );
    expect(inside.stdout).toBe("suite\n");

    // A bad header is refused (400, stable code) before anything is written.
    const refused = await fetch(`${server?.url}/e2b/envd/files?path=meta/refused.txt`, {
      method: "POST",
      headers: {
        "content-type": "application/octet-stream",
        "e2b-sandbox-id": sb.sandboxId,
        "x-access-token": sb["envdAccessToken"] as string,
        [`x-metadata-${"k".repeat(201)}`]: "v",
      },
      body: "x",
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error_code: "invalid_request" });
    expect(await sb.files.exists("meta/refused.txt")).toBe(false);
  });

  it("serves signed file URLs: download and upload without headers, expiry and a forged signature refused", async () => {
    const sb = await create({ secure: true });
    const other = await create({ secure: true });
    await sb.files.write("signed.txt", "signed content");
    const down = await sb.downloadUrl("signed.txt", { useSignatureExpiration: 600 });
    expect(new URL(down).searchParams.get("signature")).toMatch(/^v1_/);
    const ok = await fetch(down);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("signed content");

    const form = new FormData();
    form.append("file", "uploaded by url");
    const up = await fetch(await sb.uploadUrl("up.txt", { useSignatureExpiration: 600 }), {
      method: "POST",
      body: form,
    });
    expect({ status: up.status, body: up.status === 200 ? "" : await up.clone().text() }).toEqual({
      status: 200,
      body: "",
    });
    expect(await up.json()).toEqual([{ name: "up.txt", path: "/home/user/up.txt", type: "file" }]);
    expect(await sb.files.read("up.txt")).toBe("uploaded by url");
    // Not written to the other sandbox: the signature picked this one.
    expect(await other.files.exists("up.txt")).toBe(false);

    const expired = await fetch(await sb.downloadUrl("signed.txt", { useSignatureExpiration: -10_000 }));
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ code: 401, message: "signature is already expired" });
    // A read signature does not write, a changed path or signature does not match.
    const writeWithRead = await fetch(down, { method: "POST", body: form });
    expect(writeWithRead.status).toBe(401);
    const otherPath = new URL(down);
    otherPath.searchParams.set("path", "up.txt");
    expect((await fetch(otherPath)).status).toBe(401);
    const forged = new URL(down);
    forged.searchParams.set("signature", `v1_${"A".repeat(43)}`);
    const f = await fetch(forged);
    expect(f.status).toBe(401);
    expect(await f.json()).toEqual({ code: 401, message: "invalid signature" });
  });

  it("maps getHost(port) to the preview host of an exposed port", async () => {
    const sb = await create();
    const host = sb.getHost(8000);
    const apiPort = new URL(server?.url ?? "").port;
    expect(host).toBe(`8000-${sb.sandboxId}.${PREVIEW_DOMAIN}:${apiPort}`);
    const srv = await sb.commands.run("python3 -m http.server 8000", { background: true, timeoutMs: 0 });
    const exposed = await fetch(`${server?.url}/v1/sandboxes/${sb.sandboxId}/ports`, {
      method: "POST",
      headers: { authorization: `Bearer ${server?.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ port: 8000, public: true }),
    });
    expect(exposed.status).toBe(201);
    const page = await waitFor(
      "the sandbox's http.server through its preview host",
      () => getWithHost(server?.url ?? "", host).catch((e: Error) => ({ status: 0, body: e.message })),
      (r) => r.status === 200,
    );
    expect(page.body).toContain("Directory listing");
    await srv.kill();
  });

  it("answers metrics within the asked start/end window only", async () => {
    const sb = await create();
    const start = new Date(Date.now() - 5_000);
    const now = await waitFor(
      "a metrics sample",
      () => sb.getMetrics({ start, end: new Date(Date.now() + 5_000) }),
      (m) => m.length === 1,
    );
    expect(now[0]?.timestamp.getTime()).toBeGreaterThanOrEqual(start.getTime() - 1000);
    expect(now[0]?.memUsed).toBeGreaterThan(0);
    const hourAgo = Date.now() - 3_600_000;
    expect(await sb.getMetrics({ start: new Date(hourAgo), end: new Date(hourAgo + 60_000) })).toEqual([]);
    expect(await sb.getMetrics({ start: new Date(Date.now() + 3_600_000) })).toEqual([]);
  });

  it("reports a sandbox killed under a running command as killed (TimeoutError), not as a failed command", async () => {
    const sb = await create();
    const cmd = await sb.commands.run("sleep 60", { background: true, timeoutMs: 0 });
    await sb.kill();
    const err = await cmd.wait().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toContain("sandbox was killed or reached its end of life");
  });
});
