import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Per-sandbox access tokens for the E2B data plane ("envd"). A token is an HMAC of the sandbox
 * id under a secret kept in the data dir, so nothing per sandbox is stored, a token survives a
 * server restart, and it is worthless for any other sandbox.
 */
export class EnvdTokens {
  private constructor(private readonly secret: Buffer) {}

  /** Loads the secret from `<dataDir>/e2b-secret`, making it (mode 0600) on first use. */
  static async load(dataDir: string): Promise<EnvdTokens> {
    const path = join(dataDir, "e2b-secret");
    let hex = (await readFile(path, "utf8").catch(() => "")).trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) {
      hex = randomBytes(32).toString("hex");
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      // Written under a temp name and renamed: a concurrent reader never sees half a secret.
      await writeFile(`${path}.tmp`, `${hex}\n`, { mode: 0o600 });
      await chmod(`${path}.tmp`, 0o600);
      await rename(`${path}.tmp`, path);
    }
    return new EnvdTokens(Buffer.from(hex, "hex"));
  }

  /** The token that opens the data plane of `sandboxId`. */
  tokenFor(sandboxId: string): string {
    return createHmac("sha256", this.secret).update(`envd:${sandboxId}`).digest("base64url");
  }

  /** Whether `token` is the one of `sandboxId` (constant time). */
  matches(sandboxId: string, token: string | undefined): boolean {
    if (!token) return false;
    const want = Buffer.from(this.tokenFor(sandboxId));
    const got = Buffer.from(token);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}
