/**
 * A Berth server as its own process (`berth serve` from the build), for tests that must kill
 * it: SIGKILL mid-work, then start it again on the same data dir and port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { purgeDataDir } from "./purge.js";
import { holdRange } from "./ranges.js";
import { testDataDir } from "./test-runs.js";

const ROOT = join(import.meta.dirname, "..", "..");

export interface ServerProcess {
  url: string;
  /** The preview listener's base URL: exposed ports at `${previewUrl}/p/<sandboxId>/<port>/`. */
  previewUrl: string;
  adminKey: string;
  dataDir: string;
  /** Its sandboxes' address range (for a cleanup runtime of the same server). */
  cidr: string;
  /** The server's stderr so far (JSON log lines), for failure messages. */
  log(): string;
  /** Sends `signal` and waits for the process to end. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts it again (same data dir and port); resolves when /healthz answers. */
  start(): Promise<void>;
  /** Stops it (SIGTERM) and removes every sandbox, mount and file it made. */
  purge(): Promise<void>;
}

export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const dataDir = testDataDir("berth-proc-");
  let port = await freePort();
  let url = `http://127.0.0.1:${port}`;
  let range = holdRange("sandboxes");
  let cidr = range.cidr;
  let previewPort = await freePort();
  let child: ChildProcess | undefined;
  let stderr = "";
  const start = async () => {
    const c = spawn(process.execPath, [join(ROOT, "packages/cli/dist/main.js"), "serve"], {
      env: {
        PATH: process.env.PATH ?? "",
        BERTH_DATA_DIR: dataDir,
        BERTH_PORT: String(port),
        BERTH_PREVIEW_PORT: String(previewPort),
        BERTH_HOST: "127.0.0.1",
        BERTH_NETWORK_CIDR: cidr,
        BERTH_DEFAULT_DISK_MIB: "64",
        BERTH_DISK_POOL_SIZE: "2",
        BERTH_REAPER_INTERVAL_MS: "200",
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = c;
    c.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d).slice(-200_000);
    });
    for (let i = 0; ; i++) {
      if (c.exitCode !== null) throw new Error(`berth serve exited ${c.exitCode}:\n${stderr.slice(-4000)}`);
      if (
        await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      if (i > 600) throw new Error(`berth serve did not answer within 60 s:\n${stderr.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Another test may still win the race for a fresh port, or hold an overlapping sandbox range;
  // the first start then takes another one.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (e) {
      if (attempt >= 5 || !/EADDRINUSE|overlaps/.test(String(e))) {
        await kill(child, "SIGKILL");
        await purgeDataDir(dataDir, cidr);
        range.release();
        throw e;
      }
      range.release();
      range = holdRange("sandboxes");
      port = await freePort();
      url = `http://127.0.0.1:${port}`;
      cidr = range.cidr;
      previewPort = await freePort();
    }
  }
  return {
    url,
    get previewUrl() {
      return `http://127.0.0.1:${previewPort}`;
    },
    dataDir,
    cidr,
    adminKey: readFileSync(join(dataDir, "admin-key"), "utf8").trim(),
    log: () => stderr,
    start,
    async purge() {
      await kill(child, "SIGTERM");
      await purgeDataDir(dataDir, cidr);
      range.release();
    },
    kill: (signal) => kill(child, signal),
  };
}

/** Sends `signal` to a server process still running and waits for it to end. */
async function kill(c: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const ended = new Promise((r) => c.once("exit", r));
  c.kill(signal);
  await ended;
}
