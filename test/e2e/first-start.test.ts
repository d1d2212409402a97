/**
 * A newcomer's first `npm start`, on a fresh clone of this repository, in a terminal (a pty
 * from util-linux `script`): it says what it does, builds once, prints the banner, logs
 * readable lines (no JSON), and a second start skips the build. Then `npm test` in the same
 * clone and terminal, limited to one small file (`npm test -- FILE`: npm hands the file to
 * `vitest run`): human progress lines, no JSON, vitest's summary. npm's packages are hard-linked
 * from this checkout instead of downloaded again (`npm ci` is what .ci/run itself exercises).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/ports.js";
import { purgeDataDir } from "../support/purge.js";
import { holdRange, type RangeHold } from "../support/ranges.js";

const ROOT = join(import.meta.dirname, "..", "..");
/** How long one start may take (the first one builds everything, on a busy 2-core machine). */
const START_DEADLINE_MS = 12 * 60_000;
const READY = /Berth.* is ready\./;

let dir: string;
let clone: string;
let dataDir: string;
let range: RangeHold;
let env: Record<string, string>;

/** Text as a person reads it on the terminal: no colours, no carriage returns. */
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").replace(/\r/g, "");

/** `npm start` in a pty; resolves once the banner is out (or rejects with what it printed). */
async function startInTerminal(extraEnv: Record<string, string> = {}): Promise<{
  child: ChildProcess;
  output: () => string;
  seconds: number;
}> {
  const t0 = Date.now();
  const child = spawn("script", ["-qfec", "npm start", "/dev/null"], {
    cwd: clone,
    env: { ...env, ...extraEnv },
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!READY.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(
        `npm start did not print its banner (exit ${child.exitCode}); it printed:\n${plain(out).slice(-6000)}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
  const seconds = (Date.now() - t0) / 1000;
  // A few log lines come right after the banner; wait for the first one (or 10 s).
  const settle = Date.now() + 10_000;
  while (!/recovered sandboxes|"msg"/.test(out) && Date.now() < settle)
    await new Promise((r) => setTimeout(r, 100));
  return { child, output: () => plain(out), seconds };
}

/** `npm test -- FILE` in a pty, to its end: its exit code and what it printed. */
async function testInTerminal(file: string): Promise<{ code: number | null; output: string }> {
  const child = spawn("script", ["-qfec", `npm test -- ${file}`, "/dev/null"], {
    cwd: clone,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { code, output: plain(out) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once("exit", r));
  process.kill(-child.pid, "SIGINT");
  const timer = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  dir = mkdtempSync("/tmp/berth-first-start-");
  clone = join(dir, "berth");
  dataDir = join(dir, "data");
  execFileSync("git", ["clone", "--quiet", ROOT, clone]);
  execFileSync("cp", ["-al", join(ROOT, "node_modules"), join(clone, "node_modules")]);
  // The clone's lockfile is newer than the linked install: say the install is current.
  const marker = join(clone, "node_modules/.package-lock.json");
  if (existsSync(marker)) utimesSync(marker, new Date(), new Date());
  // No earlier build's fingerprint comes along with the links.
  rmSync(join(clone, "node_modules/.berth-build-fingerprint"), { force: true });
  range = holdRange("sandboxes");
  env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/root",
    TERM: "xterm",
    BERTH_DATA_DIR: dataDir,
    BERTH_HOST: "127.0.0.1",
    BERTH_PORT: String(await freePort()),
    BERTH_PREVIEW_PORT: String(await freePort()),
    BERTH_NETWORK_CIDR: range.cidr,
    BERTH_DISK_POOL_SIZE: "0",
  };
}, 5 * 60_000);

afterAll(async () => {
  if (dataDir) await purgeDataDir(dataDir, range?.cidr).catch(() => {});
  range?.release();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe("npm start on a fresh clone, in a terminal", () => {
  it(
    "builds once with progress, prints the banner and readable logs; a second start skips the build",
    async () => {
      const first = await startInTerminal();
      await stop(first.child);
      const out1 = first.output();
      expect(out1).toMatch(/\[bootstrap\] building \(TypeScript, berth-init, dashboard\)\.\.\./);
      expect(out1).toMatch(/\[bootstrap\] building .*: done in \d+\.\d s/);
      expect(out1).toContain(`API            http://127.0.0.1:${env.BERTH_PORT}`);
      expect(out1).toContain(`API reference  http://127.0.0.1:${env.BERTH_PORT}/api-docs`);
      expect(out1).toContain(`Admin key      ${dataDir}/admin-key`);
      expect(out1).toMatch(/Try: npx berth/);
      expect(out1).toMatch(/INFO +recovered sandboxes/);
      expect(out1, "a JSON log line on a terminal").not.toMatch(/^\{"level"/m);

      const second = await startInTerminal();
      await stop(second.child);
      const out2 = second.output();
      expect(out2).toContain("[bootstrap] build is up to date");
      expect(out2).not.toContain("[bootstrap] building");
      expect(out2).toMatch(READY);
      console.log(
        `npm start to banner: first ${first.seconds.toFixed(1)} s (with the build), second ${second.seconds.toFixed(1)} s`,
      );

      // Asked for JSON, a terminal gets JSON (for a collector reading a pty).
      const json = await startInTerminal({ BERTH_LOG_FORMAT: "json" });
      await stop(json.child);
      expect(json.output()).toMatch(/^\{"level":30,.*"msg":"recovered sandboxes"/m);

      // `npm test` on the same clone, in a terminal: one small file keeps it cheap.
      const test = await testInTerminal("packages/cli/src/table.test.ts");
      expect(test.code, test.output).toBe(0);
      expect(test.output).toMatch(/^\[bootstrap\] build is up to date/m);
      expect(test.output, "a JSON line on a terminal").not.toMatch(/^\s*[{[]"/m);
      expect(test.output).toMatch(/Test Files +1 passed \(1\)/);
      expect(test.output).toMatch(/Tests +\d+ passed \(\d+\)/);
    },
    3 * START_DEADLINE_MS,
  );
});
