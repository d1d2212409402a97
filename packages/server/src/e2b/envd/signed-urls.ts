import { createHash, timingSafeEqual } from "node:crypto";
import { isSandboxId, UnauthorizedError } from "@berth/core";
import type { FastifyRequest } from "fastify";
import type { ServerContext } from "../../routes/context.js";
import type { EnvdTokens } from "../access-token.js";
import { openEnvdCall } from "./auth.js";
import type { EnvdCall } from "./call.js";

/** Sandboxes looked at per page while finding the one a signature belongs to. */
const PAGE = 500;

/** What a file URL may do: `GET /files` reads, `POST /files` writes. */
export type SignedOperation = "read" | "write";

/** The query of a signed file URL, as the SDK builds it. */
export interface SignedQuery {
  path?: string;
  username?: string;
  signature?: string;
  signature_expiration?: string;
}

/**
 * envd's file URL signature: `v1_` + base64 SHA-256 of `path:operation:user:token[:expiration]`
 * (padding stripped), where `token` is the sandbox's envd access token. The SDK computes it on
 * the client, so a URL needs no round trip and carries no token.
 */
export function fileSignature(
  token: string,
  path: string,
  operation: SignedOperation,
  user: string,
  expiration?: number,
): string {
  const raw = `${path}:${operation}:${user}:${token}${expiration === undefined ? "" : `:${expiration}`}`;
  return `v1_${createHash("sha256").update(raw).digest("base64").replace(/=+$/, "")}`;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The expiration (unix seconds) of a signed URL; undefined for a URL that never expires. */
function expirationOf(q: SignedQuery, nowSeconds: number): number | undefined {
  if (q.signature_expiration === undefined || q.signature_expiration === "") return undefined;
  if (!/^-?\d{1,15}$/.test(q.signature_expiration))
    throw new UnauthorizedError("signature_expiration must be a unix time in seconds");
  const exp = Number(q.signature_expiration);
  if (exp < nowSeconds) throw new UnauthorizedError("signature is already expired");
  return exp;
}

/**
 * Resolves a request made with a signed file URL. The URL names no sandbox (the SDK builds it
 * from E2B_SANDBOX_URL's origin), so the signature is checked, in constant time, against each
 * running sandbox of this server (or only the one `E2b-Sandbox-Id` names); the cost grows with
 * the number of running sandboxes: two hashes each.
 */
export async function resolveSignedCall(
  req: FastifyRequest,
  ctx: ServerContext,
  tokens: EnvdTokens,
  operation: SignedOperation,
): Promise<EnvdCall> {
  const q = (req.query ?? {}) as SignedQuery;
  const signature = q.signature ?? "";
  if (!signature.startsWith("v1_"))
    throw new UnauthorizedError("the signature is not a v1 file URL signature");
  const exp = expirationOf(q, Math.floor(Date.now() / 1000));
  const path = q.path ?? "";
  const user = q.username ?? "";
  const matches = (id: string) =>
    sameString(fileSignature(tokens.tokenFor(id), path, operation, user, exp), signature);

  const named = req.headers["e2b-sandbox-id"];
  if (typeof named === "string" && isSandboxId(named)) {
    if (matches(named)) return openEnvdCall(req, ctx, named);
  } else {
    let cursor: string | undefined;
    do {
      const page = await ctx.store.listSandboxes({
        states: ["running"],
        replica: ctx.sandboxes.replica,
        limit: PAGE,
        cursor,
      });
      const found = page.items.find((s) => matches(s.id));
      if (found) return openEnvdCall(req, ctx, found.id);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  throw new UnauthorizedError("invalid signature");
}
