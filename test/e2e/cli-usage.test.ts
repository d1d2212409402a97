// The built `berth` binary's command-line contract, which needs no server: usage errors exit 2,
// unreachable servers and missing keys exit 1 with `berth: <code>: <message>`.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "packages", "cli", "dist", "main.js");
let work: string;

async function berth(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      cwd: work,
      env: { PATH: process.env.PATH ?? "", ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
  work = mkdtempSync(join(tmpdir(), "berth-cli-usage-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("berth command line", () => {
  it("prints help with exit 0 and usage errors with exit 2", async () => {
    const help = await berth(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("sandbox exec");
    for (const args of [
      [],
      ["frobnicate"],
      ["sandbox"],
      ["sandbox", "nope"],
      ["sandbox", "create", "--bogus"],
    ]) {
      const r = await berth(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(/^berth: .*\n\nUsage: berth/);
    }
    const badNumber = await berth(["sandbox", "create", "--memory", "lots"]);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain("--memory expects a positive integer");
    const relative = await berth(["files", "cp", "x", "sb1:relative"]);
    expect(relative.code).toBe(2);
    expect(relative.stderr).toContain("must be absolute");
  });

  it("exits 1 with a clear message when there is no key or no server", async () => {
    const noKey = await berth(["sandbox", "list"], { BERTH_DATA_DIR: join(work, "empty") });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/^berth: unauthorized: no API key: set BERTH_API_KEY/);
    const noServer = await berth(["--url", "http://127.0.0.1:9", "--key", "k", "sandbox", "list"]);
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toMatch(
      /^berth: connection_failed: cannot reach Berth at http:\/\/127\.0\.0\.1:9/,
    );
  });
});
