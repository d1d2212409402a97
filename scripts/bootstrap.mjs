#!/usr/bin/env node
// Makes a fresh clone ready to run: Debian packages (when root and missing), npm dependencies,
// and a build. `npm start`, `npm test` and `npm run bench` call it first, so a newcomer needs
// nothing but Node and root. Every step prints what it does; a step with nothing to do is quiet.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
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
  },
  test: {
    pg_ctlcluster: "postgresql",
    setpriv: "util-linux",
    chromium: "chromium",
    // The Docker driver's tests: an engine, btrfs for its disk limits, curl to ask the engine.
    dockerd: "docker.io",
    "mkfs.btrfs": "btrfs-progs",
    curl: "curl",
  },
  bench: { dockerd: "docker.io", bwrap: "bubblewrap" },
};

function say(msg) {
  process.stderr.write(`[bootstrap] ${msg}\n`);
}

function has(cmd) {
  return (
    spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0 ||
    ["/usr/sbin/", "/sbin/", "/usr/bin/"].some((d) => existsSync(d + cmd))
  );
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  if (r.status !== 0) {
    say(`failed: ${cmd} ${args.join(" ")} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function installDebianPackages() {
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
  say(`installing Debian packages: ${missing.join(" ")}`);
  run("apt-get", ["update", "-qq"]);
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

function mtime(p) {
  return existsSync(p) ? statSync(p).mtimeMs : 0;
}

function installNpmDependencies() {
  const marker = join(root, "node_modules/.package-lock.json");
  if (existsSync(marker) && mtime(marker) >= mtime(join(root, "package-lock.json"))) return;
  say("installing npm dependencies (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"]);
}

// The Node.js (22+) that Managed Agents workers run under in sandboxes: a project of its own, so
// that its `node` bin does not replace the project's Node in npm scripts.
function installManagedWorkerRuntime() {
  const dir = join(root, "packages/server/managed-worker");
  const marker = join(dir, "node_modules/.package-lock.json");
  if (existsSync(marker) && mtime(marker) >= mtime(join(dir, "package-lock.json"))) return;
  say("installing the managed agents worker's Node.js (npm ci in packages/server/managed-worker)");
  run("npm", ["ci", "--prefix", dir, "--no-audit", "--no-fund"]);
}

function build() {
  say("building (tsc -b, berth-init, dashboard)");
  run("npx", ["tsc", "-b"]);
  run("make", ["-s", "-C", "packages/supervisor"]);
  run("node", ["packages/web/build.mjs"]);
}

installDebianPackages();
installNpmDependencies();
installManagedWorkerRuntime();
build();
