// The `berth` commands that mirror the API (lifecycle, snapshots, volumes, files, processes,
// sessions, usage), typo suggestions, durations with units and exit codes (2: local or usage
// error, 1: API error): the built binary as a subprocess against a full real server.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Sandbox } from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliRun, runBerth } from "../support/cli.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const root = join(import.meta.dirname, "..", "..");
let server: TestServer | undefined;
let work: string;
const created: string[] = [];

const berth = (args: string[]): Promise<CliRun> => runBerth(server, args, { cwd: work });
const sdk = () => ({ client: undefined, apiUrl: server?.url, apiKey: server?.adminKey });

async function newSandbox(extra: string[] = []): Promise<string> {
  const r = await berth(["sandbox", "create", "--memory", "256", ...extra]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const id = r.stdout.trim();
  created.push(id);
  return id;
}

beforeAll(async () => {
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
  work = mkdtempSync(join(tmpdir(), "berth-cli-parity-"));
  server = await startTestServer();
});

afterAll(async () => {
  if (created.length > 0 && server) await berth(["sandbox", "rm", ...created]).catch(() => {});
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("berth commands that mirror the API", () => {
  it("pauses, resumes, hibernates, wakes and extends a sandbox; an unknown sandbox is an API error (exit 1)", async () => {
    const id = await newSandbox(["--timeout", "10m"]);
    const before = JSON.parse((await berth(["sandbox", "get", id])).stdout) as { expiresAt: string };
    expect(Date.parse(before.expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(Date.parse(before.expiresAt) - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    for (const [verb, state] of [
      ["pause", "paused"],
      ["resume", "running"],
      ["hibernate", "hibernated"],
      ["wake", "running"],
    ] as const) {
      const r = await berth(["sandbox", verb, id]);
      expect(r, verb).toMatchObject({ code: 0, stdout: `${id}\t${state}\n` });
      const shown = JSON.parse((await berth(["sandbox", "get", id])).stdout) as { state: string };
      expect(shown.state, verb).toBe(state);
    }
    const ext = await berth(["sandbox", "extend", id, "1h"]);
    expect(ext.code, ext.stderr).toBe(0);
    const after = JSON.parse((await berth(["sandbox", "get", id])).stdout) as { expiresAt: string };
    expect(Date.parse(after.expiresAt) - Date.parse(before.expiresAt)).toBeGreaterThanOrEqual(
      3_600_000 - 1000,
    );

    const missing = await berth(["sandbox", "pause", "sbnosuchsandbox0000"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^berth: not_found: /);
  });

  it("makes, lists, watches and removes files", async () => {
    const id = await newSandbox();
    expect((await berth(["files", "mkdir", `${id}:/workspace/a/b`])).code).toBe(0);
    const ls = await berth(["files", "ls", `${id}:/workspace/a`]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^TYPE +SIZE +MODIFIED +NAME\ndir +\d+ +\S+ +b\n$/);

    const watch = spawn(
      process.execPath,
      [join(root, "packages/cli/dist/main.js"), "files", "watch", `${id}:/workspace`],
      {
        env: {
          PATH: process.env.PATH ?? "",
          BERTH_URL: server?.url ?? "",
          BERTH_API_KEY: server?.adminKey ?? "",
        },
      },
    );
    let seen = "";
    watch.stdout.on("data", (d: Buffer) => (seen += d.toString()));
    try {
      // A new file each try until the watch reports one (it may start after the first files are
      // made, and a file made before it only shows as modified later).
      let tries = 0;
      await waitFor(
        "files watch to print a create line",
        async () => {
          tries++;
          await berth(["sandbox", "exec", id, "--", "sh", "-c", `date > /workspace/a/new${tries}.txt`]);
          return seen;
        },
        (s) => /create \/workspace\/a\/new\d+\.txt/.test(s),
        { everyMs: 300 },
      );
    } finally {
      watch.kill("SIGINT");
    }

    const rmDir = await berth(["files", "rm", `${id}:/workspace/a`]);
    expect(rmDir.code).toBe(1);
    expect((await berth(["files", "rm", "-r", `${id}:/workspace/a`])).code).toBe(0);
    expect((await berth(["files", "ls", `${id}:/workspace`])).stdout).not.toMatch(/ a\n/);

    const local = await berth(["files", "ls", "./relative"]);
    expect(local.code).toBe(2);
    expect(local.stderr).toContain("expected ID:/PATH");
  });

  it("lists a background process, prints and follows its logs, and kills it", async () => {
    const id = await newSandbox();
    const sb = await Sandbox.connect(id, sdk());
    const done = await sb.processes.start({ cmd: "echo out; echo err >&2; exit 3" });
    const sleeper = await sb.processes.start({ cmd: ["sleep", "600"] });
    const ls = await berth(["processes", "ls", id]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`\\n${sleeper.pid} +running +sleep 600`));
    const logs = await berth(["processes", "logs", "-f", id, String(done.pid)]);
    expect(logs).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect((await berth(["processes", "kill", "--signal", "KILL", id, String(sleeper.pid)])).code).toBe(0);
    await waitFor(
      "the killed process to exit",
      () => sb.processes.get(sleeper.pid),
      (p) => p.state === "exited",
    );
    const bad = await berth(["processes", "kill", "--signal", "NOPE", id, String(sleeper.pid)]);
    expect(bad.code).toBe(2);
  });

  it("starts a process with --stdin, writes piped input and --data to it, and closes it", async () => {
    const id = await newSandbox();
    const start = await berth(["processes", "start", id, "--stdin", "--", "sh", "-c", "cat; echo end"]);
    expect(start.code, start.stderr).toBe(0);
    const pid = start.stdout.trim();
    expect(pid).toMatch(/^\d+$/);
    const piped = await runBerth(server, ["processes", "stdin", id, pid], { cwd: work, input: "piped\n" });
    expect(piped).toEqual({ code: 0, stdout: "", stderr: "" });
    const last = await berth(["processes", "stdin", "--json", "--data", "given\n", "--close", id, pid]);
    expect(last.code, last.stderr).toBe(0);
    expect(JSON.parse(last.stdout)).toEqual({ pid: Number(pid), written: 6, closed: true });
    const logs = await berth(["processes", "logs", "-f", id, pid]);
    expect(logs).toEqual({ code: 0, stdout: "piped\ngiven\nend\n", stderr: "" });
    // exited now: an API error (exit 1) that says so
    const late = await berth(["processes", "stdin", "--data", "x", id, pid]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/^berth: conflict: .*has exited/);
  });

  it("creates, lists and removes snapshots and volumes, and forks a sandbox", async () => {
    const id = await newSandbox();
    const snap = await berth(["snapshot", "create", id, "--name", "cli-parity"]);
    expect(snap.code, snap.stderr).toBe(0);
    const snapId = snap.stdout.trim();
    expect((await berth(["snapshot", "list"])).stdout).toMatch(new RegExp(`${snapId} +cli-parity +${id}`));
    expect((await berth(["snapshot", "rm", snapId])).code).toBe(0);
    expect((await berth(["snapshot", "list"])).stdout).not.toContain(snapId);

    await berth(["sandbox", "exec", id, "--", "sh", "-c", "echo forked > /workspace/f.txt"]);
    const fork = await berth(["sandbox", "fork", id, "--count", "2", "--label", "fork=cli"]);
    expect(fork.code, fork.stderr).toBe(0);
    const copies = fork.stdout.trim().split("\n");
    created.push(...copies);
    expect(copies).toHaveLength(2);
    for (const c of copies) {
      const cat = await berth(["sandbox", "exec", c, "--", "cat", "/workspace/f.txt"]);
      expect(cat.stdout).toBe("forked\n");
      expect(JSON.parse((await berth(["sandbox", "get", c])).stdout).labels).toEqual({ fork: "cli" });
    }
    const tooMany = await berth(["sandbox", "fork", id, "--count", "21"]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/--count is at most 20/);

    const vol = await berth(["volume", "create", "cli-parity-vol", "--size", "32"]);
    expect(vol).toMatchObject({ code: 0, stdout: "cli-parity-vol\t32 MiB\n" });
    expect((await berth(["volume", "list"])).stdout).toMatch(/cli-parity-vol +32 MiB/);
    expect((await berth(["volume", "rm", "cli-parity-vol"])).code).toBe(0);
    const gone = await berth(["volume", "rm", "cli-parity-vol"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^berth: not_found: /);
  });

  it("lists sessions and usage, and refuses bad flag values locally (exit 2)", async () => {
    const list = await berth(["session", "list"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ID +STATE +PATTERN +SANDBOX +TURNS +COST +CREATED/);
    const usage = await berth(["usage", "--by", "day", "--json"]);
    expect(usage.code, usage.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(usage.stdout))).toBe(true);
    expect((await berth(["usage", "--by", "week"])).code).toBe(2);
    expect((await berth(["usage", "--from", "yesterday"])).code).toBe(2);
    expect((await berth(["session", "list", "--state", "asleep"])).code).toBe(2);
    const missing = await berth(["session", "show", "sesnosuchsession"]);
    expect(missing.code).toBe(1);
  });
});

describe("the command line teaches", () => {
  it("suggests the option, command or subcommand that was probably meant (exit 2)", async () => {
    const opt = await berth(["sandbox", "create", "--memroy", "256"]);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toMatch(/^berth: unknown option '--memroy'; did you mean --memory\?/);
    const sub = await berth(["sandbox", "pasue", "sb1"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/did you mean sandbox pause\?/);
    const cmd = await berth(["snapshto", "list"]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/did you mean snapshot\?/);
    const none = await berth(["sandbox", "create", "--zzzzzz"]);
    expect(none.stderr).not.toContain("did you mean");
  });

  it("takes durations with units and refuses other text (exit 2)", async () => {
    const id = await newSandbox(["--timeout", "2h"]);
    const sb = JSON.parse((await berth(["sandbox", "get", id])).stdout) as { expiresAt: string };
    const left = Date.parse(sb.expiresAt) - Date.now();
    expect(left).toBeGreaterThan(2 * 3_600_000 - 60_000);
    expect(left).toBeLessThanOrEqual(2 * 3_600_000);
    const slow = await berth(["sandbox", "exec", id, "--timeout", "1s", "--", "sleep", "30"]);
    expect(slow.code).toBe(124);
    for (const bad of ["5x", "soon", "-3s", "0s"]) {
      const r = await berth(["sandbox", "create", `--timeout=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toContain("--timeout expects a duration such as 30s, 5m or 2h");
    }
  });
});
