#!/usr/bin/env node
// Runs E2B's own JS SDK tests (packages/js-sdk/tests/sandbox of an e2b-dev/E2B checkout) against
// a running Berth server and reports how many pass, and why each failure failed.
//
//   node scripts/e2b-suite.mjs PATH_TO_E2B_CHECKOUT [--url URL] [--key BERTH_KEY] [--filter TEXT]
//                              [--json FILE]
//
// The server is the one at --url (default $BERTH_URL or http://127.0.0.1:7070); --key is a Berth
// key (default $BERTH_API_KEY or $BERTH_DATA_DIR/admin-key) used once to make an E2B-format key.
// The checkout is not changed: its SDK source and tests are copied to a scratch directory where
// the SDK's dependencies and the suite's test tools are installed with npm (cached between runs).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string" },
    key: { type: "string" },
    filter: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help || positionals.length !== 1) {
  console.error(
    readFileSync(new URL(import.meta.url), "utf8")
      .split("\n")
      .slice(1, 11)
      .join("\n"),
  );
  process.exit(values.help ? 0 : 2);
}

const sdkDir = join(resolve(positionals[0]), "packages/js-sdk");
if (!existsSync(join(sdkDir, "tests/sandbox")))
  fail(`${sdkDir}/tests/sandbox not found: give the root of an e2b-dev/E2B checkout`);
const url = (values.url ?? process.env.BERTH_URL ?? "http://127.0.0.1:7070").replace(/\/+$/, "");
const berthKey =
  values.key ??
  process.env.BERTH_API_KEY ??
  readFileSync(join(process.env.BERTH_DATA_DIR ?? ".berth", "admin-key"), "utf8").trim();

function fail(msg) {
  console.error(`e2b-suite: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", ...opts });
  if (r.status !== 0 && !opts.allowFailure) fail(`${cmd} ${args.join(" ")} exited ${r.status}`);
  return r;
}

// 1. A scratch copy of the SDK and its tests, with their dependencies (keyed by the checkout's manifest).
const manifest = JSON.parse(readFileSync(join(sdkDir, "package.json"), "utf8"));
const dev = manifest.devDependencies ?? {};
// The SDK's dependencies, and those of its dev dependencies that the source or tests import.
const imported = new Set();
for (const dir of ["src", "tests"])
  for (const f of readdirSync(join(sdkDir, dir), { recursive: true }))
    if (/\.(ts|tsx|mts)$/.test(f) && !f.startsWith("runtimes/"))
      for (const m of readFileSync(join(sdkDir, dir, f), "utf8").matchAll(
        /\bfrom\s+['"]([^./'"][^'"]*)['"]/g,
      ))
        imported.add(m[1].startsWith("@") ? m[1].split("/").slice(0, 2).join("/") : m[1].split("/")[0]);
const deps = { ...manifest.dependencies };
for (const [name, version] of Object.entries(dev)) if (imported.has(name)) deps[name] = version;
const hash = createHash("sha256").update(JSON.stringify(deps)).digest("hex").slice(0, 12);
const work = join(tmpdir(), `berth-e2b-suite-${hash}`);
mkdirSync(work, { recursive: true });
for (const d of ["src", "tests"]) {
  rmSync(join(work, d), { recursive: true, force: true });
  cpSync(join(sdkDir, d), join(work, d), { recursive: true });
}
if (!existsSync(join(work, "node_modules/.bin/vitest"))) {
  writeFileSync(
    join(work, "package.json"),
    JSON.stringify({ name: "berth-e2b-suite", private: true, type: "module", dependencies: deps }, null, 2),
  );
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: work });
}

// 2. The suite's config: the sandbox tests only, one file at a time per core of a 2-core host.
writeFileSync(
  join(work, "vitest.config.mjs"),
  `export default {
  test: {
    include: JSON.parse(process.env.E2B_SUITE_FILES),
    setupFiles: ["tests/globalFetchFallback.setup.ts"],
    isolate: true,
    testTimeout: 60000,
    hookTimeout: 120000,
    maxWorkers: 2,
    environment: "node",
  },
};
`,
);

// 3. An E2B-format key for the Berth key's tenant.
const res = await fetch(`${url}/v1/e2b/keys`, {
  method: "POST",
  headers: { authorization: `Bearer ${berthKey}` },
}).catch((e) => fail(`cannot reach ${url}: ${e.message}`));
if (res.status !== 201) fail(`POST ${url}/v1/e2b/keys answered ${res.status}: ${await res.text()}`);
const { key } = await res.json();

// 4. Two runs. Tests that mock E2B's API with msw never reach a server: with E2B_API_URL set
// msw refuses their requests, so they run on their own, without the variables (as E2B runs them).
const sandboxTests = readdirSync(join(work, "tests/sandbox"), { recursive: true })
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => `tests/sandbox/${f}`);
const mocked = sandboxTests.filter((f) => /from\s+['"]msw/.test(readFileSync(join(work, f), "utf8")));
const live = sandboxTests.filter((f) => !mocked.includes(f));
function vitest(files, env, out) {
  rmSync(out, { force: true });
  run(
    join(work, "node_modules/.bin/vitest"),
    [
      "run",
      "--config",
      "vitest.config.mjs",
      "--reporter=default",
      "--reporter=json",
      `--outputFile=${out}`,
      ...(values.filter ? ["-t", values.filter] : []),
    ],
    { cwd: work, allowFailure: true, env: { ...env, E2B_SUITE_FILES: JSON.stringify(files) } },
  );
  if (!existsSync(out)) fail("vitest wrote no results");
  return JSON.parse(readFileSync(out, "utf8"));
}
const { E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY, E2B_DOMAIN, ...baseEnv } = process.env;
const liveResults = vitest(
  live,
  { ...baseEnv, E2B_API_URL: `${url}/e2b`, E2B_SANDBOX_URL: `${url}/e2b/envd`, E2B_API_KEY: key },
  join(work, "results-live.json"),
);
const mockedResults = vitest(
  mocked,
  { ...baseEnv, E2B_API_KEY: `e2b_${"0".repeat(40)}` },
  join(work, "results-mocked.json"),
);

// 5. The report: pass counts over the tests that ran, and each failure's first line.
function summary(results) {
  const tests = results.testResults.flatMap((f) =>
    f.assertionResults.map((t) => ({ file: f.name.slice(work.length + 1), ...t })),
  );
  // A file that failed to load has no assertion results: count it as one failure.
  for (const f of results.testResults)
    if (f.assertionResults.length === 0 && f.status === "failed")
      tests.push({
        file: f.name.slice(work.length + 1),
        fullName: "(file did not load)",
        status: "failed",
        failureMessages: [f.message],
      });
  const ran = tests.filter((t) => t.status === "passed" || t.status === "failed");
  const failed = ran.filter((t) => t.status === "failed");
  const firstLine = (m) =>
    String(m ?? "")
      .split("\n")
      .find((l) => l.trim())
      ?.trim()
      .slice(0, 240);
  return {
    ran: ran.length,
    passed: ran.length - failed.length,
    skipped: tests.length - ran.length,
    passRate: ran.length ? Number(((100 * (ran.length - failed.length)) / ran.length).toFixed(1)) : 0,
    failures: failed.map((t) => ({
      test: `${t.file} > ${t.fullName}`,
      reason: firstLine(t.failureMessages?.[0]),
    })),
  };
}
const report = { server: url, againstBerth: summary(liveResults), mockedApi: summary(mockedResults) };
const all = report.againstBerth.ran + report.mockedApi.ran;
const passed = report.againstBerth.passed + report.mockedApi.passed;
report.total = { ran: all, passed, passRate: all ? Number(((100 * passed) / all).toFixed(1)) : 0 };
const line = (what, r) => `${what}: ${r.passed}/${r.ran} passed (${r.passRate}%), ${r.skipped} skipped`;
console.log(`\nE2B JS SDK suite (tests/sandbox) against ${url}`);
console.log(`  ${line("against Berth", report.againstBerth)}`);
console.log(`  ${line("mocked API (no server)", report.mockedApi)}`);
console.log(`  total: ${passed}/${all} passed (${report.total.passRate}%)`);
for (const f of [...report.againstBerth.failures, ...report.mockedApi.failures])
  console.log(`  FAIL ${f.test}\n       ${f.reason}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(passed === all ? 0 : 1);
