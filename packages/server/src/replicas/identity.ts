import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";

/**
 * This server's replica id: made once and kept in the data dir, so a restart (on any port or
 * address) is the same replica and finds its sandboxes again.
 */
export function replicaIdOf(dataDir: string): string {
  const path = join(dataDir, "replica-id");
  try {
    const id = readFileSync(path, "utf8").trim();
    if (/^r[0-9a-f]{12}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = `r${randomBytes(6).toString("hex")}`;
  writeFileSync(`${path}.tmp`, `${id}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return id;
}

/** Where other replicas reach this one: BERTH_ADVERTISE_URL, else the listen address. */
export function advertisedUrl(configured: string | undefined, host: string, port: number): string {
  if (configured) return configured.replace(/\/+$/, "");
  let h = host;
  if (h === "0.0.0.0" || h === "::") {
    const v4 = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    h = v4?.address ?? "127.0.0.1";
  }
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`;
}
