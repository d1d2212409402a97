/**
 * A real Berth server for end-to-end tests: in this process, on a free loopback port, with its
 * own data dir (SQLite, or PostgreSQL when `env.BERTH_DATABASE_URL` is given), real runc
 * sandboxes. `stop()` removes every sandbox it made and every file; `restart()` stops the API
 * only, leaving sandboxes running, and starts it again on the same data dir and port.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "@berth/core";
import { type BerthServer, startServer } from "@berth/server";
import pino from "pino";
import { purgeDataDir } from "./purge.js";
import { holdRange } from "./ranges.js";
import { testDataDir } from "./test-runs.js";

export interface TestServer {
  url: string;
  /** The preview listener's base URL: exposed ports at `${previewUrl}/p/<sandboxId>/<port>/`. */
  previewUrl: string;
  adminKey: string;
  dataDir: string;
  /** The server's log lines (JSON), for tests that check what is logged. */
  logLines: string[];
  /** Stops the API (sandboxes keep running), runs `whileDown`, starts it again. */
  restart(o?: { whileDown?: () => void | Promise<void> }): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestServer(
  o: { env?: Record<string, string>; dataDir?: string } = {},
): Promise<TestServer> {
  const dataDir = o.dataDir ?? testDataDir("berth-e2e-");
  const logLines: string[] = [];
  // Servers of concurrent test files (and any other server on this host) share it: each test
  // server holds a /22 of sandbox addresses nothing else uses (another one if the server still
  // finds it taken); BERTH_NETWORK_CIDR "" lets the server pick.
  let range = o.env?.BERTH_NETWORK_CIDR === undefined ? holdRange("sandboxes") : undefined;
  let cidr: string | undefined = o.env?.BERTH_NETWORK_CIDR ?? range?.cidr;
  const logger = pino(
    { level: process.env.BERTH_TEST_LOG_LEVEL ?? "info" },
    { write: (line: string) => logLines.push(line) },
  );
  let port = "0";
  let previewPort = o.env?.BERTH_PREVIEW_PORT ?? "0";
  const boot = async (): Promise<BerthServer> => {
    const config = loadConfig({
      BERTH_DEFAULT_DISK_MIB: "64",
      BERTH_DISK_POOL_SIZE: "1",
      BERTH_REAPER_INTERVAL_MS: "200",
      ...o.env,
      BERTH_NETWORK_CIDR: cidr ?? "",
      BERTH_HOST: "127.0.0.1",
      BERTH_PORT: port,
      BERTH_PREVIEW_PORT: previewPort,
      BERTH_DATA_DIR: dataDir,
    });
    const s = await startServer(config, { logger });
    port = new URL(s.url).port;
    previewPort = new URL(s.previewUrl).port;
    return s;
  };
  let server: BerthServer | undefined;
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await boot();
    } catch (err) {
      range?.release();
      if (o.env?.BERTH_NETWORK_CIDR !== undefined || attempt >= 5 || !/overlaps/.test(String(err))) {
        // A refused start made nothing on the host but files in its data dir.
        if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
      range = holdRange("sandboxes");
      cidr = range.cidr;
    }
  }
  const t: TestServer = {
    url: server.url,
    previewUrl: server.previewUrl,
    adminKey: readFileSync(join(dataDir, "admin-key"), "utf8").trim(),
    dataDir,
    logLines,
    async restart(r = {}) {
      await server?.close();
      server = undefined;
      await r.whileDown?.();
      server = await boot();
    },
    async stop() {
      await server?.close();
      server = undefined;
      // Whatever the tests left running goes, through a runtime of its own.
      await purgeDataDir(dataDir, cidr || undefined);
      range?.release();
    },
  };
  return t;
}

/** A fetch against the test server with the given key (JSON in and out). */
export async function api(
  s: { url: string },
  key: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
