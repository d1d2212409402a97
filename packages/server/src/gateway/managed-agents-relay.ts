import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger } from "@berth/core";
import { hash, readBody, refuse } from "./relay-http.js";

/** Where the relay listens on the gateway's port: the worker's ANTHROPIC_BASE_URL ends with it. */
export const MANAGED_AGENTS_PREFIX = "/managed-agents";

/** The largest request body relayed (a memory file upload is the biggest a worker sends). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Longest query string relayed (event listing takes a few filters). */
const MAX_QUERY_CHARS = 4096;

/** What the relay knows of one work item's worker. */
export interface RelayGrant {
  /** The sandbox the worker runs in: its token is taken only from that sandbox's address. */
  sandboxId: string;
  environmentId: string;
  workId: string;
  sessionId: string;
  /** The control plane's base URL (the integration's `baseUrl`). */
  upstream: string;
  /** The credential the control plane sees: the item's sessions token, else the environment key. */
  credential(): string;
}

/** A relayed call's route: its method, its path's shape, and the ids it must name. */
interface Route {
  method: string;
  path: RegExp;
  /** Whether the ids the path names are the grant's own. */
  owns(m: RegExpExecArray, g: RelayGrant): boolean;
}

const ID = "([A-Za-z0-9_-]{1,128})";
const itsItem = (m: RegExpExecArray, g: RelayGrant) => m[1] === g.environmentId && m[2] === g.workId;
const itsSession = (m: RegExpExecArray, g: RelayGrant) => m[1] === g.sessionId;
const any = () => true;

/**
 * Exactly what the SDK's environment worker calls for one item (lib/environments/worker.ts,
 * lib/internal/environments/{lease,stop}.ts, lib/tools/SessionToolRunner.ts, the toolset's skills
 * and memory code). Skills and memory stores are named by ids the session lists; the control plane
 * scopes them to the sessions token, which is the credential such calls carry.
 */
const ROUTES: Route[] = [
  {
    method: "POST",
    path: new RegExp(`^/v1/environments/${ID}/work/${ID}/(?:ack|heartbeat|stop)$`),
    owns: itsItem,
  },
  { method: "GET", path: new RegExp(`^/v1/sessions/${ID}$`), owns: itsSession },
  { method: "GET", path: new RegExp(`^/v1/sessions/${ID}/events$`), owns: itsSession },
  { method: "POST", path: new RegExp(`^/v1/sessions/${ID}/events$`), owns: itsSession },
  { method: "GET", path: new RegExp(`^/v1/sessions/${ID}/events/stream$`), owns: itsSession },
  { method: "GET", path: new RegExp(`^/v1/skills/${ID}/versions/${ID}(?:/content)?$`), owns: any },
  { method: "GET", path: new RegExp(`^/v1/memory_stores/${ID}(?:/memories(?:/${ID})?)?$`), owns: any },
  { method: "POST", path: new RegExp(`^/v1/memory_stores/${ID}/memories(?:/${ID})?$`), owns: any },
  { method: "DELETE", path: new RegExp(`^/v1/memory_stores/${ID}/memories/${ID}$`), owns: any },
];

/** Request headers a worker's call keeps on its way to the control plane. */
const KEPT_REQUEST =
  /^(content-type|accept|anthropic-version|anthropic-beta|anthropic-worker-id|idempotency-key|user-agent|x-stainless-[a-z0-9-]+)$/;
/** Answer headers the worker gets back. */
const KEPT_ANSWER =
  /^(content-type|cache-control|request-id|retry-after|x-should-retry|anthropic-[a-z0-9-]+)$/;

/**
 * The Managed Agents relay on the model gateway's port. A work item's worker in its sandbox
 * calls it with a Berth token for that item in place of any real credential; the relay lets
 * through only the calls a worker makes, for that item and its session only, from the item's
 * own sandbox only, and sends them to the integration's control plane with the real
 * credential (the item's sessions token, or the environment key) swapped in.
 */
export class ManagedAgentsRelay {
  private readonly grants = new Map<string, RelayGrant>();

  constructor(
    private readonly o: {
      log: Logger;
      /** Whether a token of the item in `sandboxId` may be used from `address` (the model gateway's binding). */
      tokenFrom?: (sandboxId: string, address: string) => boolean;
    },
  ) {}

  /** A new token for one item's worker. */
  grant(g: RelayGrant): string {
    const token = `berth-ma-${randomBytes(24).toString("base64url")}`;
    this.grants.set(hash(token), g);
    return token;
  }

  /** The token stops working. */
  revoke(token: string): void {
    this.grants.delete(hash(token));
  }

  /** Whether a request on the gateway's port is the relay's. */
  claims(url: string | undefined): boolean {
    return url === MANAGED_AGENTS_PREFIX || (url ?? "").startsWith(`${MANAGED_AGENTS_PREFIX}/`);
  }

  /** Serves one request the relay claims; `from` is the caller's address. */
  async handle(req: IncomingMessage, res: ServerResponse, from: string): Promise<void> {
    const target = parseTarget(req.method ?? "", (req.url ?? "").slice(MANAGED_AGENTS_PREFIX.length));
    if (!target)
      return refuse(res, 404, "not_found_error", "Berth's Managed Agents relay does not relay this call");
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1] ?? "";
    const grant = bearer ? this.grants.get(hash(bearer)) : undefined;
    if (!grant) return refuse(res, 401, "authentication_error", "unknown or expired Berth work item token");
    if (this.o.tokenFrom && !this.o.tokenFrom(grant.sandboxId, from))
      return refuse(res, 403, "permission_error", "this Berth work item token belongs to another sandbox");
    const m = target.route.path.exec(target.path) as RegExpExecArray;
    if (!target.route.owns(m, grant))
      return refuse(res, 403, "permission_error", "this Berth token is for another work item or session");
    const body = await readBody(req, MAX_BODY_BYTES);
    if (!body)
      return refuse(res, 413, "request_too_large", `a request may have at most ${MAX_BODY_BYTES} bytes`);
    const upstream = new URL(grant.upstream);
    const url = new URL(
      `${upstream.pathname.replace(/\/+$/, "")}${target.path}${target.query}`,
      upstream.origin,
    );
    await this.relay(req, res, url, body, grant.credential());
  }

  private async relay(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    body: Buffer,
    credential: string,
  ): Promise<void> {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const upstream = send(url, {
      method: req.method,
      headers: upstreamHeaders(req.headers, credential, body),
    });
    res.on("close", () => upstream.destroy());
    upstream.end(body);
    let answer: IncomingMessage;
    try {
      answer = await new Promise<IncomingMessage>((resolve, reject) => {
        upstream.once("response", resolve);
        upstream.once("error", reject);
      });
    } catch (err) {
      this.o.log.warn(
        { err: String(err), host: url.host },
        "managed agents relay: the control plane is unreachable",
      );
      return refuse(res, 502, "api_error", "Berth could not reach the Managed Agents control plane");
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers))
      if (v !== undefined && KEPT_ANSWER.test(k)) headers[k] = v;
    res.writeHead(answer.statusCode ?? 502, headers);
    res.flushHeaders();
    answer.pipe(res);
    res.on("close", () => answer.destroy());
    await new Promise<void>((resolve) => answer.once("end", resolve).once("close", resolve));
  }
}

/** The route and the parts of an origin-form path that a worker may call, or null. */
function parseTarget(method: string, raw: string): { route: Route; path: string; query: string } | null {
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? "" : raw.slice(q);
  // No percent-encoding, dot segments or doubled slashes: the path is relayed as it was matched.
  if (!/^(\/[A-Za-z0-9_-]+)+$/.test(path)) return null;
  if (query.length > MAX_QUERY_CHARS || query.includes("#")) return null;
  const route = ROUTES.find((r) => r.method === method && r.path.test(path));
  return route ? { route, path, query } : null;
}

function upstreamHeaders(h: IncomingHttpHeaders, credential: string, body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined && KEPT_REQUEST.test(k)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  out.authorization = `Bearer ${credential}`;
  out["content-length"] = String(body.length);
  out["accept-encoding"] = "identity";
  return out;
}
