import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UnauthorizedError } from "@berth/core";

/** Where and as whom the SDK talks to Berth; both default from the environment. */
export interface ConnectionOptions {
  /** Base URL of the server; default `BERTH_URL` or `http://127.0.0.1:${BERTH_PORT || 7070}`. */
  apiUrl?: string;
  /** API key; default `BERTH_API_KEY`, else the admin key in `${BERTH_DATA_DIR || ./.berth}/admin-key`. */
  apiKey?: string;
}

type Env = Record<string, string | undefined>;

/** The server URL from an explicit option or the environment, without a trailing slash. */
export function resolveApiUrl(apiUrl: string | undefined, env: Env = process.env): string {
  const url = apiUrl || env.BERTH_URL || `http://127.0.0.1:${env.BERTH_PORT || 7070}`;
  return url.replace(/\/+$/, "");
}

/**
 * The API key from an explicit option, `BERTH_API_KEY`, or the admin key file the server
 * writes on first start. Throws UnauthorizedError saying how to get one when none exists.
 */
export function resolveApiKey(apiKey: string | undefined, env: Env = process.env): string {
  if (apiKey) return apiKey;
  if (env.BERTH_API_KEY) return env.BERTH_API_KEY;
  const dir = env.BERTH_DATA_DIR || ".berth";
  try {
    const key = readFileSync(join(dir, "admin-key"), "utf8").trim();
    if (key) return key;
  } catch {
    // Missing or unreadable: fall through to the message that says what to do.
  }
  throw new UnauthorizedError(
    `no API key: set BERTH_API_KEY or start the server so ${join(dir, "admin-key")} exists`,
  );
}
