#!/usr/bin/env node
// Makes a fresh clone ready to run: Debian packages (when root and missing), npm dependencies,
// and a build. `npm start`, `npm test` and `npm run bench` call it first, so a newcomer needs
// nothing but Node and root. Every step prints what it does and how long it took; a step with
// nothing to do is quiet. The build is skipped when no input changed since the last one (see
// buildFingerprint), so a second `npm start` goes straight to the server.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const mode = process.argv.includes("--test") ? "test" : process.argv.includes("--bench") ? "bench" : "serve";

/** Debian packages by the command that proves they are there. */
const NEEDED = {
  serve: {
    runc: "runc",
    crun: "crun",
    "mkfs.ext4": "e2fsprogs",
    losetup: "mount",
    tar: "tar",
    nft: "nftables",
    ip: "iproute2",
    zstd: "zstd",
    // Sandbox disks on a copy-on-write store where the data dir cannot reflink (forks).
    "mkfs.btrfs": "btrfs-progs",
  },
  test: {
    pg_ctlcluster: "postgresql",
    setpriv: "util-linux",
    chromium: "chromium",
    // The Docker driver's tests: an engine (btrfs for its disk limits is a serve need), curl to ask the engine.
    dockerd: "docker.io",
    curl: "curl",
  },
  bench: { dockerd: "docker.io", bwrap: "bubblewrap" },
};

function say(msg) {
  process.stderr.write(`[bootstrap] ${msg}\n`);
}

/** How often a long step says it is still at work. */
const HEARTBEAT_MS = 15_000;

/**
 * Runs one step between a "what" line and a "done in N s" line, and every 15 s says it is still
 * at work (with `progress()`'s words, e.g. how many packages are in), so a long step is never a
 * mystery.
 */
async function step(what, fn, progress = () => "") {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  say(`${what}...`);
  const beat = setInterval(() => {
    const more = progress();
    say(`  still ${what.split(" (")[0]}: ${elapsed()}${more ? `, ${more}` : ""}`);
  }, HEARTBEAT_MS);
  try {
    await fn();
  } finally {
    clearInterval(beat);
  }
  say(`${what}: done in ${elapsed()}`);
}

function has(cmd) {
  return (
    spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0 ||
    ["/usr/sbin/", "/sbin/", "/usr/bin/"].some((d) => existsSync(d + cmd))
  );
}

/** Runs a command with the terminal as its output; exits the bootstrap if it fails. */
async function run(cmd, args, opts = {}) {
  const code = await new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: "inherit", cwd: root, ...opts });
    child.on("error", () => resolve("not started"));
    child.on("close", (status, signal) => resolve(status ?? signal));
  });
  if (code !== 0) {
    say(`failed: ${cmd} ${args.join(" ")} (exit ${code})`);
    process.exit(1);
  }
}

async function installDebianPackages() {
  const wanted = {
    ...NEEDED.serve,
    ...(mode === "test" ? NEEDED.test : {}),
    ...(mode === "bench" ? { ...NEEDED.test, ...NEEDED.bench } : {}),
  };
  const missing = [
    ...new Set(
      Object.entries(wanted)
        .filter(([cmd]) => !has(cmd))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    say(
      `missing Debian packages: ${missing.join(" ")}; run as root or install them: apt-get install ${missing.join(" ")}`,
    );
    process.exit(1);
  }
  await step(`installing Debian packages: ${missing.join(" ")}`, async () => {
    await run("apt-get", ["update", "-qq"]);
    await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  });
}

function mtime(p) {
  return existsSync(p) ? statSync(p).mtimeMs : 0;
}

/** How many packages node_modules holds so far (scoped ones counted one by one). */
function installedPackages() {
  const dir = join(root, "node_modules");
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    n += name.startsWith("@") ? readdirSync(join(dir, name)).length : 1;
  }
  return n;
}

/**
 * Where better-sqlite3's compiled addon is kept between installs on this machine, by version,
 * Node ABI and platform. No prebuilt binary can be downloaded here (no GitHub), so `npm ci`
 * compiles SQLite: 1.5 min on an idle 2-core machine, more on a busy one, on every fresh clone.
 */
function sqliteAddonCache() {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const version = lock.packages?.["node_modules/better-sqlite3"]?.version;
  if (!version) return null;
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "berth", "native");
  return join(
    dir,
    `better-sqlite3-${version}-abi${process.versions.modules}-${process.platform}-${process.arch}.node`,
  );
}
const SQLITE_ADDON = "node_modules/better-sqlite3/build/Release/better_sqlite3.node";

/** Whether this checkout's better-sqlite3 loads and answers a query. */
function sqliteLoads() {
  const probe = "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()";
  return spawnSync(process.execPath, ["-e", probe], { cwd: root, stdio: "ignore" }).status === 0;
}

/** Keeps the addon just compiled for the next install (a failure to keep it only costs time). */
function keepSqliteAddon(cache) {
  try {
    mkdirSync(dirname(cache), { recursive: true });
    copyFileSync(join(root, SQLITE_ADDON), `${cache}.${process.pid}`);
    renameSync(`${cache}.${process.pid}`, cache);
  } catch (err) {
    say(`could not keep SQLite's compiled addon in ${dirname(cache)}: ${err.message}`);
  }
}

async function installNpmDependencies() {
  const marker = join(root, "node_modules/.package-lock.json");
  if (existsSync(marker) && mtime(marker) >= mtime(join(root, "package-lock.json"))) return;
  const cache = sqliteAddonCache();
  if (cache && existsSync(cache)) {
    await step(
      "installing npm dependencies (npm ci, with SQLite's addon compiled by an earlier install here)",
      async () => {
        // The install scripts allowed (package.json's allowScripts) are esbuild's, run below,
        // and better-sqlite3's, the compile the cached addon stands in for.
        await run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]);
        await run("npm", ["rebuild", "esbuild", "--no-audit", "--no-fund", "--loglevel=error"]);
        mkdirSync(dirname(join(root, SQLITE_ADDON)), { recursive: true });
        copyFileSync(cache, join(root, SQLITE_ADDON));
        if (sqliteLoads()) return;
        say("the cached SQLite addon does not load here; compiling it");
        rmSync(cache, { force: true });
        await run("npm", ["rebuild", "better-sqlite3", "--no-audit", "--no-fund", "--loglevel=error"]);
        keepSqliteAddon(cache);
      },
    );
    return;
  }
  // Top-level packages of the lockfile that install on this machine (others' binaries are skipped).
  const fits = (v, key, mine) => !Array.isArray(v[key]) || v[key].includes(mine);
  const total = Object.entries(
    JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")).packages ?? {},
  )
    .filter(
      ([p]) => p.startsWith("node_modules/") && !p.slice("node_modules/".length).includes("/node_modules/"),
    )
    .filter(([, v]) => fits(v, "os", process.platform) && fits(v, "cpu", process.arch)).length;
  await step(
    "installing npm dependencies (npm ci; the first time takes a few minutes)",
    () => run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
    () => `${installedPackages()} of about ${total} packages in node_modules`,
  );
  if (cache && existsSync(join(root, SQLITE_ADDON))) keepSqliteAddon(cache);
}

// The Node.js (22+) that Managed Agents workers run under in sandboxes: a project of its own, so
// that its `node` bin does not replace the project's Node in npm scripts.
async function installManagedWorkerRuntime() {
  const dir = join(root, "packages/server/managed-worker");
  const marker = join(dir, "node_modules/.package-lock.json");
  if (existsSync(marker) && mtime(marker) >= mtime(join(dir, "package-lock.json"))) return;
  await step(
    "installing the managed agents worker's Node.js (npm ci in packages/server/managed-worker)",
    () => run("npm", ["ci", "--prefix", dir, "--no-audit", "--no-fund"]),
  );
}

/** What the build reads: every file whose change needs a rebuild (sources, configs, the lockfile). */
const BUILD_INPUTS = ["packages", "tsconfig.json", "tsconfig.base.json", "package-lock.json"];
/** Folders under BUILD_INPUTS that are the build's output or not its input. */
const NOT_INPUTS = new Set(["node_modules", "dist", "build", ".berth"]);
/** What the build writes: if one is missing, the build runs whatever the fingerprint says. */
const BUILD_OUTPUTS = [
  "packages/cli/dist/main.js",
  "packages/server/dist/index.js",
  "packages/supervisor/build/berth-init",
  "packages/web/dist/index.html",
];
const STAMP = join(root, "node_modules/.berth-build-fingerprint");

/** A hash of every build input's path, size and modification time (cheap: no file is read). */
function buildFingerprint() {
  const hash = createHash("sha256");
  const walk = (rel) => {
    const abs = join(root, rel);
    if (!existsSync(abs)) return;
    const st = statSync(abs);
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort())
        if (!NOT_INPUTS.has(name) && !name.endsWith(".tsbuildinfo")) walk(join(rel, name));
    } else hash.update(`${rel}\0${st.size}\0${st.mtimeMs}\n`);
  };
  for (const rel of BUILD_INPUTS) walk(rel);
  return hash.digest("hex");
}

async function build() {
  const fingerprint = buildFingerprint();
  const built = BUILD_OUTPUTS.every((p) => existsSync(join(root, p)));
  if (built && existsSync(STAMP) && readFileSync(STAMP, "utf8") === fingerprint) {
    say("build is up to date (no source changed since the last build)");
    return;
  }
  await step("building (TypeScript, berth-init, dashboard)", async () => {
    await run("npx", ["tsc", "-b"]);
    await run("make", ["-s", "-C", "packages/supervisor"]);
    await run("node", ["packages/web/build.mjs"]);
  });
  writeFileSync(STAMP, fingerprint);
}

await installDebianPackages();
await installNpmDependencies();
await installManagedWorkerRuntime();
await build();
