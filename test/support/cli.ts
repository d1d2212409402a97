/**
 * Runs the `berth` CLI from its build against a test server, asynchronously (the server usually
 * lives in the test's own process, so a synchronous spawn would deadlock it).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";

const BIN = join(import.meta.dirname, "..", "..", "packages/cli/dist/main.js");

/** What one CLI run printed and its exit code. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `berth ARGS` with BERTH_URL and BERTH_API_KEY set to `server`'s (and `env` over them). */
export function runBerth(
  server: { url: string; adminKey: string } | undefined,
  args: string[],
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: {
        PATH: process.env.PATH ?? "",
        BERTH_URL: server?.url ?? "",
        BERTH_API_KEY: server?.adminKey ?? "",
        ...opts.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}
