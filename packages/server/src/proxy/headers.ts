import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { ProxyTarget } from "./target.js";

/** The cookie that carries a port's token after a `?token=` request. */
export const TOKEN_COOKIE = "berth_token";
/** The header that carries a port's token. */
export const TOKEN_HEADER = "x-berth-token";

/** Headers that describe one connection, not the message: never passed on (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** What Berth reads from a request and the sandbox must not see. */
const BERTH_ONLY = new Set(["authorization", TOKEN_HEADER, "expect"]);

/** A token presented with a request, and where it came from. */
export interface PresentedToken {
  token: string;
  from: "header" | "query" | "cookie";
}

/** The token a request presents: header first, then the query, then the cookie. */
export function presentedToken(req: IncomingMessage, target: ProxyTarget): PresentedToken | undefined {
  const header = req.headers[TOKEN_HEADER];
  if (typeof header === "string" && header) return { token: header.trim(), from: "header" };
  const q = target.path.indexOf("?");
  if (q >= 0)
    for (const part of target.path.slice(q + 1).split("&"))
      if (part.startsWith("token=")) return { token: decode(part.slice(6)), from: "query" };
  const cookie = berthCookie(req.headers.cookie);
  return cookie === undefined ? undefined : { token: cookie, from: "cookie" };
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s.replaceAll("+", " "));
  } catch {
    return s;
  }
};

/** `path` without its `token` query parameters (the rest byte for byte as sent). */
export function withoutToken(path: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path;
  const kept = path
    .slice(q + 1)
    .split("&")
    .filter((p) => p !== "token" && !p.startsWith("token="));
  return kept.length ? `${path.slice(0, q)}?${kept.join("&")}` : path.slice(0, q);
}

function berthCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(";")) {
    const p = pair.trim();
    if (p.startsWith(`${TOKEN_COOKIE}=`)) return p.slice(TOKEN_COOKIE.length + 1);
  }
  return undefined;
}

/** The Cookie header without Berth's cookie (undefined when nothing else is left). */
function cookiesForSandbox(header: string | undefined): string | undefined {
  if (!header?.includes(TOKEN_COOKIE)) return header;
  const kept = header
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p && !p.startsWith(`${TOKEN_COOKIE}=`));
  return kept.length ? kept.join("; ") : undefined;
}

/** The Set-Cookie value that lets a browser reach the port again without `?token=`. */
export function tokenCookie(token: string, target: ProxyTarget, secure: boolean): string {
  return `${TOKEN_COOKIE}=${token}; Path=${target.cookiePath}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}

/** Whether the client reached Berth over TLS (directly or through a front that says so). */
export function isSecure(req: IncomingMessage): boolean {
  return (
    (req.socket as { encrypted?: boolean }).encrypted === true ||
    firstValue(req.headers["x-forwarded-proto"]) === "https"
  );
}

const firstValue = (v: string | string[] | undefined) =>
  (Array.isArray(v) ? v[0] : v)?.split(",")[0]?.trim().toLowerCase();

/**
 * The headers the sandbox gets: the client's, minus hop-by-hop headers, its Authorization,
 * Berth's token header and cookie; plus X-Forwarded-For/Proto/Host/Prefix. An upgrade keeps
 * its `Connection: Upgrade` and `Upgrade`.
 */
export function requestHeadersForSandbox(
  req: IncomingMessage,
  target: ProxyTarget,
  o: { upgrade: boolean },
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(req.headers);
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || BERTH_ONLY.has(k) || named?.has(k)) continue;
    if (k === "cookie") {
      const c = cookiesForSandbox(v as string);
      if (c !== undefined) out.cookie = c;
      continue;
    }
    out[k] = v;
  }
  if (o.upgrade) {
    out.connection = "Upgrade";
    if (req.headers.upgrade) out.upgrade = req.headers.upgrade;
  } else if (req.headers["transfer-encoding"]) out["transfer-encoding"] = "chunked";
  const prior = req.headers["x-forwarded-for"];
  const addr = req.socket.remoteAddress ?? "";
  out["x-forwarded-for"] = prior ? `${prior}, ${addr}` : addr;
  out["x-forwarded-proto"] =
    firstValue(req.headers["x-forwarded-proto"]) ?? (isSecure(req) ? "https" : "http");
  out["x-forwarded-host"] = req.headers["x-forwarded-host"] ?? req.headers.host ?? "";
  if (target.prefix) out["x-forwarded-prefix"] = target.prefix;
  return out;
}

/** The sandbox's response headers for the client: all but the hop-by-hop ones. */
export function responseHeadersForClient(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(headers);
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named?.has(k)) out[k] = v;
  return out;
}

/** Header names a `Connection` header lists (also hop-by-hop). */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const c = headers.connection;
  if (!c) return undefined;
  const names = c
    .toLowerCase()
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s && !["close", "keep-alive", "upgrade", "host"].includes(s));
  return names.length ? new Set(names) : undefined;
}
