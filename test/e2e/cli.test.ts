// End-to-end: the built `berth` binary as a real subprocess against a full real server.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliRun, runBerth } from "../support/cli.js";
import { startTestServer } from "../support/server.js";

const root = join(import.meta.dirname, "..", "..");

let server: Awaited<ReturnType<typeof startTestServer>> | undefined;
let work: string;
const created: string[] = [];

/** Runs `berth ARGS` in the test's work dir against its server. */
const berth = (
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<CliRun> => runBerth(server, args, { ...opts, cwd: work });

async function createSandbox(): Promise<string> {
  const r = await berth(["sandbox", "create", "--memory", "256", "--label", "suite=cli-e2e"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const id = r.stdout.trim();
  expect(id).toMatch(/^sb[a-z0-9]{16}$/);
  created.push(id);
  return id;
}

beforeAll(async () => {
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
  work = mkdtempSync(join(tmpdir(), "berth-cli-e2e-"));
  server = await startTestServer();
});

afterAll(async () => {
  if (created.length > 0 && server) await berth(["sandbox", "rm", ...created]).catch(() => {});
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("berth CLI end to end", () => {
  it("creates a sandbox and runs a command in it as uid 1000 with the id as hostname", async () => {
    const id = await createSandbox();
    const r = await berth(["sandbox", "exec", id, "--", "sh", "-c", "id -u; hostname"]);
    expect(r).toEqual({ code: 0, stdout: `1000\n${id}\n`, stderr: "" });

    const both = await berth([
      "sandbox",
      "exec",
      id,
      "--env",
      "X=42",
      "--cwd",
      "/tmp",
      "--",
      "sh",
      "-c",
      'echo "$X $PWD"; echo oops >&2',
    ]);
    expect(both).toEqual({ code: 0, stdout: "42 /tmp\n", stderr: "oops\n" });

    const three = await berth(["sandbox", "exec", id, "--", "sh", "-c", "exit 3"]);
    expect(three.code).toBe(3);

    const list = await berth(["sandbox", "list", "--label", "suite=cli-e2e", "--json"]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { id: string }[]).map((s) => s.id)).toContain(id);
    const table = await berth(["sandbox", "list"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+STATE/);
    expect(table.stdout).toContain(id);

    const get = await berth(["sandbox", "get", id]);
    expect(JSON.parse(get.stdout)).toMatchObject({ id, state: "running" });
  });

  it("copies files and directories both ways with ID:/path", async () => {
    const id = await createSandbox();
    writeFileSync(join(work, "up.txt"), "uploaded\n");
    mkdirSync(join(work, "tree", "nested"), { recursive: true });
    writeFileSync(join(work, "tree", "top.txt"), "top\n");
    writeFileSync(join(work, "tree", "nested", "deep.txt"), "deep\n");

    expect((await berth(["files", "cp", "up.txt", `${id}:/tmp/up.txt`])).code).toBe(0);
    expect((await berth(["files", "cp", "tree", `${id}:/tmp`])).code).toBe(0);
    const check = await berth([
      "sandbox",
      "exec",
      id,
      "--",
      "sh",
      "-c",
      "cat /tmp/up.txt /tmp/tree/top.txt /tmp/tree/nested/deep.txt",
    ]);
    expect(check).toEqual({ code: 0, stdout: "uploaded\ntop\ndeep\n", stderr: "" });

    await berth([
      "sandbox",
      "exec",
      id,
      "--",
      "sh",
      "-c",
      "mkdir -p /tmp/out/d && echo one > /tmp/out/one && echo two > /tmp/out/d/two",
    ]);
    expect((await berth(["files", "cp", `${id}:/tmp/out/one`, "one.txt"])).code).toBe(0);
    expect(readFileSync(join(work, "one.txt"), "utf8")).toBe("one\n");
    const dl = await berth(["files", "cp", `${id}:/tmp/out`, "fetched"]);
    expect(dl.stderr).toBe("");
    expect(readFileSync(join(work, "fetched", "one"), "utf8")).toBe("one\n");
    expect(readFileSync(join(work, "fetched", "d", "two"), "utf8")).toBe("two\n");

    const cat = await berth(["files", "cp", `${id}:/tmp/up.txt`, "-"]);
    expect(cat).toEqual({ code: 0, stdout: "uploaded\n", stderr: "" });
  });

  it("opens a shell that runs piped input and exits with the shell's code", async () => {
    const id = await createSandbox();
    const r = await berth(["shell", id], { input: "echo hi-$((1+1))\nexit 5\n" });
    expect(r.stdout).toContain("hi-2");
    expect(r.code).toBe(5);
  });

  it("creates an API key for another tenant that cannot see the admin's sandboxes", async () => {
    const id = await createSandbox();
    const r = await berth(["keys", "create", "--tenant", "other"]);
    expect(r.code).toBe(0);
    const key = r.stdout.trim();
    expect(key.length).toBeGreaterThan(16);
    const denied = await berth(["sandbox", "get", id], { env: { BERTH_API_KEY: key } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^berth: not_found: /);
    const own = await berth(["--key", key, "sandbox", "list", "--json"]);
    expect(JSON.parse(own.stdout)).toEqual([]);
  });

  it("removes sandboxes and reports API errors with their code and exit 1", async () => {
    const id = await createSandbox();
    expect((await berth(["sandbox", "rm", id])).code).toBe(0);
    const gone = await berth(["sandbox", "exec", id, "--", "true"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^berth: invalid_state: sandbox '\w+' is deleted/);
    const unknown = await berth(["sandbox", "get", "sbnosuchsandbox00"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^berth: not_found: /);
  });

  it("creates a sandbox with an egress allowlist", async () => {
    const made = await berth([
      "sandbox",
      "create",
      "--json",
      "--allow",
      "example.com",
      "--allow",
      "10.1.0.0/16",
    ]);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout).network).toEqual({
      egress: "allowlist",
      allow: ["example.com", "10.1.0.0/16"],
    });
    const bad = await berth(["sandbox", "create", "--egress", "sometimes"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--egress must be none, allowlist or open");
  });

  it("rejects bad flags and unknown commands with usage and exit 2", async () => {
    const bad = await berth(["sandbox", "create", "--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Usage: berth sandbox create");
    const unknown = await berth(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Usage: berth COMMAND");
    const noCmd = await berth(["sandbox", "exec", "sb1"]);
    expect(noCmd.code).toBe(2);
    const help = await berth(["sandbox", "exec", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: berth sandbox exec ID");
  });
});
