import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { readSse } from "../support/sse.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
let id: string;
const exec = (body: unknown) => api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, body);

beforeAll(async () => {
  server = await startTestServer({ env: { BERTH_EXEC_OUTPUT_LIMIT_BYTES: "4096" } });
  const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
    env: { GREETING: "hello" },
    labels: { suite: "exec" },
  });
  expect(r.status).toBe(201);
  expect(r.body.state).toBe("running");
  id = r.body.id;
});

afterAll(async () => {
  await server?.stop();
});

describe("exec", () => {
  it("runs as uid 1000 in /workspace with the sandbox id as hostname and a working node", async () => {
    const r = await exec({ cmd: ["sh", "-c", "id -u; hostname; pwd; echo $HOME; node --version"] });
    expect(r.status).toBe(200);
    const [uid, host, cwd, home, node] = r.body.stdout.trim().split("\n");
    expect(uid).toBe("1000");
    expect(host).toBe(id);
    expect(cwd).toBe("/workspace");
    expect(home).toBe("/home/user");
    expect(node).toMatch(/^v\d+\./);
    expect(r.body).toMatchObject({ exitCode: 0, timedOut: false });
    expect(r.body.durationMs).toBeGreaterThan(0);
  });

  it("passes sandbox env, per-call env, cwd and stdin, and reports exit codes", async () => {
    const r = await exec({
      cmd: ["sh", "-c", 'echo "$GREETING $WHO"; pwd; cat; echo oops >&2; exit 3'],
      env: { WHO: "world" },
      cwd: "/tmp",
      stdin: "from stdin\n",
    });
    expect(r.body.stdout).toBe("hello world\n/tmp\nfrom stdin\n");
    expect(r.body.stderr).toBe("oops\n");
    expect(r.body.exitCode).toBe(3);
  });

  it("answers 127 for a command that does not exist and 128+N for a signal", async () => {
    const missing = await exec({ cmd: ["no-such-command-here"] });
    expect(missing.body).toMatchObject({
      exitCode: 127,
      stderr: "no-such-command-here: command not found\n",
    });
    expect((await exec({ cmd: ["sh", "-c", "kill -TERM $$"] })).body.exitCode).toBe(143);
  });

  it("answers 126 for a program that may not be run, and 400 naming cwd for a cwd that does not exist", async () => {
    const notRunnable = await exec({ cmd: ["/tmp"] });
    expect(notRunnable.body).toMatchObject({ exitCode: 126, stderr: "/tmp: Permission denied\n" });
    const r = await exec({ cmd: ["true"], cwd: "/no/such/dir" });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: "invalid_request",
      message: "cwd '/no/such/dir' cannot be used: No such file or directory",
      details: { field: "cwd" },
    });
  });

  it("kills a command at timeoutMs, with its children, and says so", async () => {
    const r = await exec({ cmd: ["sh", "-c", "sleep 30 & sleep 30; echo never"], timeoutMs: 300 });
    expect(r.body).toMatchObject({ timedOut: true, exitCode: 124, stdout: "" });
    expect(r.body.durationMs).toBeLessThan(10_000);
    const ps = await exec({ cmd: ["sh", "-c", "ps -eo comm | grep -c '^sleep$' || true"] });
    expect(ps.body.stdout.trim()).toBe("0");
  });

  it("cuts output past BERTH_EXEC_OUTPUT_LIMIT_BYTES and marks it truncated", async () => {
    const r = await exec({ cmd: ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a"] });
    expect(r.body.truncated).toBe(true);
    expect(r.body.stdout.length).toBe(4096);
    expect(r.body.exitCode).toBe(0);
  });

  it("streams output as SSE events in order, ending with the exit code", async () => {
    const { status, events } = await readSse(
      `${server.url}/v1/sandboxes/${id}/exec`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ cmd: ["sh", "-c", "echo one; sleep 0.2; echo two >&2; exit 5"] }),
      },
      { until: (e) => e.event === "exit" },
    );
    expect(status).toBe(200);
    expect(events.map((e) => [e.event, e.data.data ?? e.data.exitCode])).toEqual([
      ["stdout", "one\n"],
      ["stderr", "two\n"],
      ["exit", 5],
    ]);
    expect(events.map((e) => Number(e.id))).toEqual([1, 2, 3]);
  });
});

describe("background processes", () => {
  it("starts one, lists it, reads and follows its logs, and reports its exit code", async () => {
    const started = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done >&2; exit 4"],
    });
    expect(started.status).toBe(201);
    const pid = started.body.pid as number;
    expect(started.body.state).toBe("running");
    const list = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/processes`);
    expect(list.body.items.map((p: { pid: number }) => p.pid)).toContain(pid);
    const { events } = await readSse(
      `${server.url}/v1/sandboxes/${id}/processes/${pid}/logs`,
      { headers: { authorization: `Bearer ${server.adminKey}` } },
      { until: (e) => e.event === "exit" },
    );
    const out = events
      .filter((e) => e.event === "stdout")
      .map((e) => e.data.data)
      .join("");
    expect(out).toBe("line 1\nline 2\nline 3\n");
    expect(events.at(-1)).toMatchObject({ event: "exit", data: { exitCode: 4 } });
    const logs = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/processes/${pid}/logs`);
    expect(logs.body).toMatchObject({ pid, stdout: out, stderr: "done\n", state: "exited", exitCode: 4 });
    const one = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/processes/${pid}`);
    expect(one.body).toMatchObject({ pid, state: "exited", exitCode: 4 });
    // The store keeps the process's record too (it outlives the sandbox).
    const { openStore } = await import("@berth/store");
    const store = await openStore({ dataDir: server.dataDir });
    try {
      const rows = await store.listProcesses(id);
      expect(rows.find((p) => p.pid === pid)).toMatchObject({
        state: "exited",
        exitCode: 4,
        cmd: started.body.cmd,
      });
    } finally {
      await store.close();
    }
  });

  it("resumes a log stream from Last-Event-ID without losing or repeating output", async () => {
    const started = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sh", "-c", "echo first; echo second"],
    });
    const url = `${server.url}/v1/sandboxes/${id}/processes/${started.body.pid}/logs`;
    const headers = { authorization: `Bearer ${server.adminKey}` };
    const all = await readSse(url, { headers }, { until: (e) => e.event === "exit" });
    const firstChunk = all.events[0];
    expect(firstChunk?.id).toMatch(/^\d+\.\d+$/);
    const rest = await readSse(
      url,
      { headers: { ...headers, "last-event-id": firstChunk?.id ?? "" } },
      { until: (e) => e.event === "exit" },
    );
    const text = (evs: typeof all.events) =>
      evs
        .filter((e) => e.event === "stdout")
        .map((e) => e.data.data)
        .join("");
    expect(text([firstChunk!]) + text(rest.events)).toBe("first\nsecond\n");
  });

  it("signals a running process", async () => {
    const started = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sleep", "60"],
    });
    const pid = started.body.pid;
    const sig = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes/${pid}/signal`, {
      signal: "SIGKILL",
    });
    expect(sig.status).toBe(202);
    const p = await waitFor(
      `process ${pid} to exit`,
      async () => (await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/processes/${pid}`)).body,
      (x) => x.state === "exited",
    );
    expect(p).toMatchObject({ state: "exited", signal: "SIGKILL" });
  });

  it("writes to a kept stdin as raw bytes and as JSON, closes it, and refuses what it cannot do", async () => {
    const stdin = (pid: number, body: string | undefined, query = "", headers: Record<string, string> = {}) =>
      api(
        server,
        server.adminKey,
        "POST",
        `/v1/sandboxes/${id}/processes/${pid}/stdin${query}`,
        body,
        headers,
      );
    const started = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sh", "-c", "while read line; do echo got $line; done; echo eof"],
      stdin: true,
    });
    expect(started.status).toBe(201);
    const pid = started.body.pid as number;
    const raw = await stdin(pid, "one\n", "", { "content-type": "application/octet-stream" });
    expect(raw).toMatchObject({ status: 200, body: { pid, written: 4, closed: false } });
    const b64 = await stdin(
      pid,
      JSON.stringify({ data: Buffer.from("two\n").toString("base64"), encoding: "base64" }),
    );
    expect(b64.body).toEqual({ pid, written: 4, closed: false });
    const last = await stdin(pid, JSON.stringify({ data: "three\n" }), "?close=true");
    expect(last.body).toEqual({ pid, written: 6, closed: true });
    const p = await waitFor(
      `process ${pid} to exit after its stdin closed`,
      async () =>
        (await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/processes/${pid}/logs`)).body,
      (x) => x.state === "exited",
    );
    expect(p).toMatchObject({ stdout: "got one\ngot two\ngot three\neof\n", exitCode: 0 });

    // exited: 409; unknown pid: 404; malformed JSON: 400 naming the field; over 1 MiB: 413
    const exited = await stdin(pid, "x", "", { "content-type": "text/plain" });
    expect(exited.status).toBe(409);
    expect(exited.body.error).toMatchObject({
      code: "conflict",
      message: expect.stringContaining("has exited"),
    });
    expect((await stdin(4000000, "x", "", { "content-type": "text/plain" })).status).toBe(404);
    const bad = await stdin(pid, JSON.stringify({ data: 5 }));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_request", details: { field: "data" } });
    const big = await stdin(pid, "x".repeat(1024 * 1024 + 1), "", { "content-type": "text/plain" });
    expect(big.status).toBe(413);

    // started without stdin: 409 saying to start it with stdin
    const plain = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sleep", "60"],
    });
    const refused = await stdin(plain.body.pid, "x", "", { "content-type": "text/plain" });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain("start it with stdin: true");
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes/${plain.body.pid}/signal`, {
      signal: "SIGKILL",
    });
  });
});

describe("sandbox records", () => {
  it("lists with state and label filters and pages with a cursor", async () => {
    const second = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
      labels: { suite: "other" },
    });
    const byLabel = await api(server, server.adminKey, "GET", "/v1/sandboxes?label=suite=exec");
    expect(byLabel.body.items.map((s: { id: string }) => s.id)).toEqual([id]);
    const page1 = await api(server, server.adminKey, "GET", "/v1/sandboxes?state=running&limit=1");
    expect(page1.body.items).toHaveLength(1);
    expect(page1.body.nextCursor).toBeTruthy();
    const page2 = await api(
      server,
      server.adminKey,
      "GET",
      `/v1/sandboxes?state=running&limit=1&cursor=${page1.body.nextCursor}`,
    );
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.items[0].id).not.toBe(page1.body.items[0].id);
    expect((await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${second.body.id}`)).status).toBe(
      204,
    );
    expect((await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${second.body.id}`)).status).toBe(
      204,
    );
    const gone = await api(server, server.adminKey, "GET", `/v1/sandboxes/${second.body.id}`);
    expect(gone.body.state).toBe("deleted");
    expect(
      (await api(server, server.adminKey, "POST", `/v1/sandboxes/${second.body.id}/exec`, { cmd: ["true"] }))
        .status,
    ).toBe(409);
  });

  it("patches labels and timeout, and extends the expiry", async () => {
    const p = await api(server, server.adminKey, "PATCH", `/v1/sandboxes/${id}`, {
      labels: { suite: "exec", extra: "yes" },
      timeoutSeconds: 3600,
    });
    expect(p.body.labels).toEqual({ suite: "exec", extra: "yes" });
    expect(Date.parse(p.body.expiresAt) - Date.parse(p.body.createdAt)).toBe(3_600_000);
    const e = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/extend`, { seconds: 600 });
    expect(Date.parse(e.body.expiresAt)).toBe(Date.parse(p.body.expiresAt) + 600_000);
    await api(server, server.adminKey, "PATCH", `/v1/sandboxes/${id}`, { timeoutSeconds: 0 });
  });

  it("reports the sandbox's resource use and cost", async () => {
    const m = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body.memoryBytes).toBeGreaterThan(0);
    expect(m.body.pids).toBeGreaterThanOrEqual(1);
    expect(m.body.uptimeSeconds).toBeGreaterThan(0);
    expect(m.body.costUsd).toBeGreaterThan(0);
  });

  it("deletes a sandbox past its timeoutSeconds and records why", async () => {
    const s = await api(server, server.adminKey, "POST", "/v1/sandboxes", { timeoutSeconds: 1 });
    const { events } = await readSse(
      `${server.url}/v1/sandboxes/${s.body.id}/events`,
      { headers: { authorization: `Bearer ${server.adminKey}` } },
      { until: (e) => e.event === "state" && e.data.state === "deleted", timeoutMs: 15_000 },
    );
    expect(events.map((e) => e.event)).toContain("timeout");
    expect(events.at(-1)?.data.state).toBe("deleted");
    // Replaying after the first event gives the rest, not the first again.
    const replay = await readSse(
      `${server.url}/v1/sandboxes/${s.body.id}/events`,
      { headers: { authorization: `Bearer ${server.adminKey}`, "last-event-id": events[0]?.id ?? "" } },
      { timeoutMs: 5_000 },
    );
    expect(replay.events.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
  });
});
