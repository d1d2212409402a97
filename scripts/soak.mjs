#!/usr/bin/env node
// `npm run test:soak -- --runs N`: runs the whole suite N times, each time exactly as CI does
// (`.ci/run` in a fresh clone of the current commit, its own `npm ci` included), one run after
// another, and reports which tests failed in how many runs and how long each run took. A flake
// shows here before it lands. Exits 1 if any run failed.
//
// Options: --runs N (default 5), --timeout-min M (a run still going after M minutes is killed and
// counts as failed; default 30), --keep (keep each clone too; the logs are always kept).
// vitest also writes a JSON report when BERTH_TEST_JSON names a file (vitest.config.ts): that is
// how the per-test results are read; `npm test` itself is unchanged.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");

function parseArgs(argv) {
  const o = { runs: 5, timeoutMin: 30, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") o.runs = Number(argv[++i]);
    else if (a === "--timeout-min") o.timeoutMin = Number(argv[++i]);
    else if (a === "--keep") o.keep = true;
    else {
      console.error(
        `unknown argument ${a}\nusage: npm run test:soak -- [--runs N] [--timeout-min M] [--keep]`,
      );
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) {
    console.error("--runs must be a whole number of at least 1");
    process.exit(2);
  }
  if (!(o.timeoutMin > 0)) {
    console.error("--timeout-min must be a positive number");
    process.exit(2);
  }
  return o;
}

const git = (...args) => spawnSync("git", args, { cwd: root, encoding: "utf8" });

/** Runs `.ci/run` in `dir` with its output in `logFile`; answers its exit code (null: killed at the deadline). */
function ciRun(dir, logFile, reportFile, timeoutMs) {
  return new Promise((resolve) => {
    const log = createWriteStream(logFile);
    const child = spawn(join(dir, ".ci/run"), [], {
      cwd: dir,
      env: { ...process.env, BERTH_TEST_JSON: reportFile },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a run killed at the deadline takes its children along
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      log.write(`\n[soak] still running after ${timeoutMs / 60_000} min: killed\n`);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      log.end(() => resolve(timedOut ? null : code));
    });
  });
}

/** Failed tests in a vitest JSON report: `file > test name`, or `file` when the file failed outside a test. */
function failuresIn(reportFile, dir) {
  if (!existsSync(reportFile)) return { failed: null, passed: 0, skipped: 0 };
  const r = JSON.parse(readFileSync(reportFile, "utf8"));
  const failed = [];
  for (const f of r.testResults ?? []) {
    const file = f.name.startsWith(`${dir}/`) ? f.name.slice(dir.length + 1) : f.name;
    const bad = (f.assertionResults ?? []).filter((t) => t.status === "failed");
    for (const t of bad) failed.push(`${file} > ${t.fullName}`);
    // A hook or import that failed: the file failed with no failed test of its own.
    if (f.status === "failed" && bad.length === 0)
      failed.push(
        `${file} (outside any test: ${String(f.message ?? "")
          .split("\n")[0]
          .slice(0, 160)})`,
      );
  }
  return { failed, passed: r.numPassedTests ?? 0, skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0) };
}

const o = parseArgs(process.argv.slice(2));
const head = git("rev-parse", "HEAD").stdout.trim();
if (git("status", "--porcelain", "--untracked-files=no").stdout.trim())
  console.log(
    "[soak] note: uncommitted changes are not tested; each run clones the commit",
    head.slice(0, 10),
  );
const base = mkdtempSync("/tmp/berth-soak-");
console.log(`[soak] ${o.runs} run(s) of .ci/run on fresh clones of ${head.slice(0, 10)}; logs in ${base}`);

const runs = [];
const counts = new Map();
for (let i = 1; i <= o.runs; i++) {
  const dir = join(base, `run-${i}`);
  mkdirSync(dir);
  const clone = spawnSync("git", ["clone", "--quiet", "--no-local", "--no-checkout", root, dir], {
    encoding: "utf8",
  });
  const checkout =
    clone.status === 0
      ? spawnSync("git", ["-C", dir, "checkout", "--quiet", "--detach", head], { encoding: "utf8" })
      : clone;
  if (checkout.status !== 0) {
    console.error(`[soak] could not clone: ${checkout.stderr}`);
    process.exit(1);
  }
  const logFile = join(base, `run-${i}.log`);
  const reportFile = join(base, `run-${i}.json`);
  const t0 = Date.now();
  console.log(`[soak] run ${i}/${o.runs} started`);
  const code = await ciRun(dir, logFile, reportFile, o.timeoutMin * 60_000);
  const seconds = Math.round((Date.now() - t0) / 1000);
  const { failed, passed, skipped } = failuresIn(reportFile, dir);
  // No report: it failed before the tests ran (install, type-check, lint) or was killed.
  const problems = failed ?? [
    code === null ? "(killed at the deadline)" : "(no test report: failed before the tests ran)",
  ];
  if (failed && failed.length === 0 && code !== 0)
    problems.push(`(.ci/run exited ${code} with every test passing)`);
  for (const p of problems) counts.set(p, (counts.get(p) ?? 0) + 1);
  runs.push({ i, code, seconds, passed, skipped, failed: problems.length });
  console.log(
    `[soak] run ${i}/${o.runs}: ${code === 0 ? "green" : "FAILED"} in ${Math.floor(seconds / 60)} min ${seconds % 60} s, ${passed} passed, ${skipped} skipped, ${problems.length} failed${problems.length ? `:\n  ${problems.join("\n  ")}` : ""}`,
  );
  if (!o.keep) rmSync(dir, { recursive: true, force: true });
}

console.log("\n[soak] durations:");
for (const r of runs)
  console.log(
    `  run ${r.i}: ${Math.floor(r.seconds / 60)} min ${String(r.seconds % 60).padStart(2, "0")} s  exit ${r.code ?? "killed"}  ${r.passed} passed, ${r.skipped} skipped, ${r.failed} failed`,
  );
if (counts.size === 0) console.log(`\n[soak] every test passed in all ${o.runs} run(s)`);
else {
  console.log("\n[soak] failures (runs failed / runs):");
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${n}/${o.runs}  ${name}`);
}
console.log(`\n[soak] logs and vitest's JSON reports: ${base}`);
process.exit(runs.every((r) => r.code === 0) ? 0 : 1);
