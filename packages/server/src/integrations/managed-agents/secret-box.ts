import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, SETTINGS } from "@berth/core";

/** Version tag of the ciphertext format: `v1.<iv>.<tag>.<data>`, base64url, AES-256-GCM. */
const FORMAT = "v1";
/** Shortest server secret accepted from BERTH_SECRET_KEY. */
const MIN_SECRET_CHARS = 32;

/**
 * Encrypts credentials for the store with a key derived from the server secret
 * (BERTH_SECRET_KEY, or a random one kept in `<dataDir>/secret.key` with mode 0600), so that a
 * copy of the database alone does not give them away.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The box of this server: from the setting, else from (or into) the data dir's key file. */
  static open(o: { secretKey: string | undefined; dataDir: string }): SecretBox {
    let secret = o.secretKey;
    if (secret !== undefined && secret.length < MIN_SECRET_CHARS)
      throw new ConfigError(`${SETTINGS.secretKey.env} must have at least ${MIN_SECRET_CHARS} characters`);
    if (secret === undefined) {
      const file = join(o.dataDir, "secret.key");
      if (!existsSync(file))
        writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" });
      secret = readFileSync(file, "utf8").trim();
    }
    // A purpose label keeps this key apart from anything else one day derived from the secret.
    return new SecretBox(createHash("sha256").update(`berth:managed-agents:v1:${secret}`).digest());
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return [FORMAT, iv, cipher.getAuthTag(), data]
      .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
      .join(".");
  }

  /** The plain text; throws when the secret is not the one that sealed it. */
  open(sealed: string): string {
    const [format, iv, tag, data] = sealed.split(".");
    if (format !== FORMAT || !iv || !tag || data === undefined) throw new Error("not a sealed secret");
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64url"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString(
      "utf8",
    );
  }
}
