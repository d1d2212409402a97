/**
 * What the model gateway relays, and how: the only requests an agent needs, in origin form, to
 * the configured upstream only, with headers from an allowlist. Everything a sandbox sends is
 * hostile: the request target never chooses the host, and the client's credentials never pass.
 */

/** The Messages API calls an agent makes; nothing else reaches the upstream with the real key. */
export const RELAYED_PATHS = ["/v1/messages", "/v1/messages/count_tokens"] as const;
export type RelayedPath = (typeof RELAYED_PATHS)[number];

/** Request headers passed to the upstream (lower case); `x-stainless-*` (SDK telemetry) too. */
const PASSED_HEADERS = new Set([
  "content-type",
  "accept",
  "user-agent",
  "anthropic-version",
  "anthropic-beta",
  "x-app",
  "x-claude-code-session-id",
]);
const PASSED_PREFIX = "x-stainless-";

/** Query parameters passed on (the SDK's `?beta=true`); the rest are dropped. */
const PASSED_QUERY = new Set(["beta"]);

/** A request the gateway relays: which call, and the upstream URL it goes to. */
export interface RelayTarget {
  path: RelayedPath;
  url: URL;
}

/**
 * The upstream URL for a request, or null when it is not one the gateway relays. The target must
 * be in origin form (`/v1/messages?...`): an absolute form (`http://host/...`), a `//host/...`
 * path, or any other spelling of the path (percent-encoded, dot segments, trailing slash) is not
 * relayed. Scheme, host and port come from `upstream` (BERTH_ANTHROPIC_BASE_URL) alone; its own
 * path prefix, if any, stays in front.
 */
export function relayTarget(
  method: string | undefined,
  target: string | undefined,
  upstream: URL,
): RelayTarget | null {
  if (method !== "POST" || !target?.startsWith("/") || target.startsWith("//")) return null;
  const q = target.indexOf("?");
  const path = (q < 0 ? target : target.slice(0, q)) as RelayedPath;
  if (!RELAYED_PATHS.includes(path)) return null;
  const url = new URL(upstream.origin);
  url.pathname = `${upstream.pathname.replace(/\/$/, "")}${path}`;
  if (q >= 0)
    for (const [k, v] of new URLSearchParams(target.slice(q + 1)))
      if (PASSED_QUERY.has(k)) url.searchParams.append(k, v);
  return { path, url };
}

/**
 * The headers the upstream gets: the allowlisted ones from the client, the real key, and an
 * identity encoding (the gateway reads the answer to meter it, so it must not come compressed).
 */
export function upstreamHeaders(
  from: Record<string, string | string[] | undefined>,
  apiKey: string,
  contentLength: number,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if (PASSED_HEADERS.has(name) || name.startsWith(PASSED_PREFIX))
      out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  out["x-api-key"] = apiKey;
  out["accept-encoding"] = "identity";
  out["content-length"] = String(contentLength);
  return out;
}

/** Answer headers passed back to the sandbox: not hop-by-hop ones, nor any the upstream sets as cookies. */
const DROPPED_ANSWER_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "set-cookie",
]);

/** The upstream's answer headers as the sandbox gets them. */
export function answerHeaders(
  from: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(from))
    if (value !== undefined && !DROPPED_ANSWER_HEADERS.has(name)) out[name] = value;
  return out;
}
