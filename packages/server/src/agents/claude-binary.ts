import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SandboxError } from "@berth/core";

/** The native `claude` binary's package for this platform. */
const NATIVE_PACKAGE = `@anthropic-ai/claude-agent-sdk-${process.platform}-${process.arch}`;

/**
 * Puts the SDK's native `claude` binary where sandboxes can run it: under `agentDir` (default
 * below /usr/local, which the default template binds read-only into every sandbox), in a
 * directory per version. A hard link when the data is on the same filesystem (instant, no
 * space), a copy otherwise. Returns the binary's path, the same on the host and in sandboxes.
 */
export function installClaudeBinary(agentDir: string): string {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${NATIVE_PACKAGE}/package.json`);
  } catch {
    throw new SandboxError(`the Claude Agent SDK's native binary (${NATIVE_PACKAGE}) is not installed`);
  }
  const version = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const source = join(dirname(pkgJson), "claude");
  const target = join(agentDir, version, "claude");
  if (existsSync(target)) return target;
  if (!agentDir.startsWith("/usr/"))
    throw new SandboxError(
      `BERTH_AGENT_DIR must lie under /usr (sandboxes see the host's /usr), got '${agentDir}'`,
    );
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  const partial = `${target}.${process.pid}.partial`;
  try {
    linkSync(source, partial);
  } catch {
    copyFileSync(source, partial);
  }
  renameSync(partial, target);
  return target;
}
