import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnauthorizedError } from "@berth/core";
import { afterAll, describe, expect, it } from "vitest";
import { resolveApiKey, resolveApiUrl } from "./config.js";

const dir = mkdtempSync(join(tmpdir(), "berth-sdk-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("connection defaults", () => {
  it("takes the URL from the option, BERTH_URL, then BERTH_PORT on loopback", () => {
    expect(resolveApiUrl("http://x:1/", {})).toBe("http://x:1");
    expect(resolveApiUrl(undefined, { BERTH_URL: "http://y:2" })).toBe("http://y:2");
    expect(resolveApiUrl(undefined, { BERTH_PORT: "9" })).toBe("http://127.0.0.1:9");
    expect(resolveApiUrl(undefined, {})).toBe("http://127.0.0.1:7070");
  });

  it("takes the key from the option, BERTH_API_KEY, then the trimmed admin-key file", () => {
    writeFileSync(join(dir, "admin-key"), "  bk_admin\n");
    expect(resolveApiKey("k1", { BERTH_API_KEY: "k2" })).toBe("k1");
    expect(resolveApiKey(undefined, { BERTH_API_KEY: "k2", BERTH_DATA_DIR: dir })).toBe("k2");
    expect(resolveApiKey(undefined, { BERTH_DATA_DIR: dir })).toBe("bk_admin");
  });

  it("says how to get a key when there is none", () => {
    const empty = join(dir, "nothing-here");
    expect(() => resolveApiKey(undefined, { BERTH_DATA_DIR: empty })).toThrow(UnauthorizedError);
    expect(() => resolveApiKey(undefined, { BERTH_DATA_DIR: empty })).toThrow(
      /no API key: set BERTH_API_KEY/,
    );
  });
});
