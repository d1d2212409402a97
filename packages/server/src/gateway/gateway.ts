import { randomBytes } from "node:crypto";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger, SessionUsage } from "@berth/core";
import { answerDemo, isDemoRequest } from "../demo/demo-model.js";
import { SessionAccount, type SpendAccount, type TenantBudgets } from "./budgets.js";
import {
  clampToBudget,
  inputTokenBound,
  MAX_REQUEST_BYTES,
  type ModelRequest,
  parseModelRequest,
  worstCaseUsd,
} from "./model-request.js";
import type { PriceTable } from "./prices.js";
import { hash, readBody, refuse } from "./relay-http.js";
import { answerHeaders, type RelayTarget, relayTarget, upstreamHeaders } from "./relay-policy.js";
import { UsageMeter } from "./usage-meter.js";

/** Why the gateway could not get a session an answer (for the session's `failure`). */
export interface ModelFailure {
  code: "budget_exceeded" | "model_error" | "model_unavailable";
  message: string;
  /** The upstream's HTTP status (model_error). */
  upstreamStatus?: number;
}

/** What the gateway knows of a session that may use it. */
export interface GatewayGrant {
  sessionId: string;
  /** The sandbox the session's agent runs in: the token is taken only from its address. */
  sandboxId: string;
  /** Whose monthly budget the session spends from. */
  tenantId: string;
  /** USD the session may spend on tokens (null: no budget). */
  budgetUsd: number | null;
  /** USD spent before this grant (an earlier run of the same session). */
  spentUsd: number;
  /** Called after each answer with the usage it carried and its cost. */
  onUsage(usage: SessionUsage, costUsd: number, model: string): void;
  /** Called when a request is refused or the model answers with an error. */
  onFailure?: (f: ModelFailure) => void;
}

/** A per-session token: long, random, and never the real key. */
export type GatewayToken = string;

/** How long the gateway waits for a sandbox to send a whole request (a slow sender holds nothing longer). */
const REQUEST_TIMEOUT_MS = 60_000;
/** How long the gateway waits for the upstream to count a request's tokens before it uses its own bound. */
const COUNT_TIMEOUT_MS = 10_000;
/** The fields `count_tokens` takes of a Messages request. */
const COUNTED_FIELDS = ["model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"];

interface Grant {
  g: GatewayGrant;
  account: SessionAccount;
}

export interface ModelGatewayOptions {
  upstream: string;
  apiKey: string | undefined;
  prices: PriceTable;
  log: Logger;
  /** Who may connect at all (by remote address): sandboxes' ranges and loopback. */
  allowFrom?: (address: string) => boolean;
  /** Whether a token of the session in `sandboxId` may be used from `address` (only from its own sandbox). */
  tokenFrom?: (sandboxId: string, address: string) => boolean;
  /** Tenants' monthly budgets (none: no tenant caps). */
  tenantBudgets?: TenantBudgets;
  /** Called when an answer has been relayed: its duration, status, usage and cost (for metrics). */
  onRelayed?: (seconds: number, status: number, usage: SessionUsage | null, costUsd: number) => void;
  /** Called when an answer names a model the price table does not know (it was priced at the default). */
  onUnpriced?: (model: string) => void;
  /** Another relay on the same port (the Managed Agents relay): it serves the paths it claims. */
  sideRelay?: {
    claims(url: string | undefined): boolean;
    handle(req: IncomingMessage, res: ServerResponse, from: string): Promise<void>;
  };
}

/**
 * The model gateway: agents in sandboxes call it with a per-session token in place of an API key.
 * It relays the two Messages API calls an agent needs, to the configured upstream only, from the
 * token's own sandbox only; holds the worst case of each request against the session's and the
 * tenant's budgets before it is sent; swaps in the real key; streams the answer back unchanged;
 * and settles on the usage the answer carries.
 */
export class ModelGateway {
  private readonly grants = new Map<string, Grant>();
  private readonly upstream: URL;
  private server: Server | null = null;

  constructor(private readonly o: ModelGatewayOptions) {
    this.upstream = new URL(o.upstream);
  }

  /** Listens on every address at `port` (0: any free one); sandboxes reach it at their host address. */
  async start(port: number): Promise<number> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.o.log.warn({ err: String(err) }, "gateway: request failed");
        if (!res.headersSent) refuse(res, 502, "api_error", "the model gateway could not reach the model");
        else res.destroy();
      });
    });
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "0.0.0.0", () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  /** A new token for a session. */
  grant(g: GatewayGrant): GatewayToken {
    const token = `berth-gw-${randomBytes(24).toString("base64url")}`;
    this.grants.set(hash(token), { g, account: new SessionAccount(g.budgetUsd, g.spentUsd) });
    return token;
  }

  /** The token stops working. */
  revoke(token: GatewayToken): void {
    this.grants.delete(hash(token));
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const from = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    if (this.o.allowFrom && !this.o.allowFrom(from))
      return refuse(res, 403, "permission_error", "the model gateway serves Berth's sandboxes only");
    if (this.o.sideRelay?.claims(req.url)) return this.o.sideRelay.handle(req, res, from);
    const target = relayTarget(req.method, req.url, this.upstream);
    if (!target)
      return refuse(
        res,
        404,
        "not_found_error",
        "Berth's model gateway relays only POST /v1/messages and POST /v1/messages/count_tokens",
      );
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
    const token = String(req.headers["x-api-key"] ?? bearer ?? "");
    const grant = token ? this.grants.get(hash(token)) : undefined;
    if (!grant) return refuse(res, 401, "authentication_error", "unknown or expired Berth session token");
    if (this.o.tokenFrom && !this.o.tokenFrom(grant.g.sandboxId, from))
      return refuse(res, 403, "permission_error", "this Berth session token belongs to another sandbox");
    const raw = await readBody(req, MAX_REQUEST_BYTES);
    if (!raw)
      return refuse(res, 413, "request_too_large", `a request may have at most ${MAX_REQUEST_BYTES} bytes`);
    // The scripted demo model answers here, costs nothing and needs no key.
    if (isDemoRequest(raw)) return answerDemo(target.path, raw, res);
    if (!this.o.apiKey) {
      const message = "Berth has no model API key (set BERTH_ANTHROPIC_API_KEY)";
      grant.g.onFailure?.({ code: "model_unavailable", message });
      return refuse(res, 503, "api_error", message);
    }
    if (target.path === "/v1/messages/count_tokens") {
      // Counting is free: no budget is held.
      await this.relay(req, res, target, raw, null, t0);
      return;
    }
    const parsed = parseModelRequest(raw);
    if (typeof parsed === "string") return refuse(res, 400, "invalid_request_error", `Berth: ${parsed}`);
    const admitted = await this.admit(grant, req, raw, parsed);
    if (typeof admitted === "string") {
      grant.g.onFailure?.({ code: "budget_exceeded", message: admitted });
      return refuse(res, 402, "billing_error", admitted);
    }
    const body = admitted.request === parsed ? raw : Buffer.from(JSON.stringify(admitted.request.body));
    let spent = 0;
    try {
      const reading = await this.relay(req, res, target, body, grant, t0);
      if (reading && reading.status >= 400)
        grant.g.onFailure?.({
          code: "model_error",
          message: `the model answered HTTP ${reading.status}`,
          upstreamStatus: reading.status,
        });
      spent = reading?.costUsd ?? 0;
      if (spent > admitted.held + 1e-12)
        this.o.log.warn(
          { sessionId: grant.g.sessionId, spent, held: admitted.held },
          "gateway: the model reported more usage than the request's worst case",
        );
    } finally {
      for (const a of admitted.accounts) await a.settle(admitted.held, spent);
    }
  }

  /**
   * Holds the worst case of a request against every budget it spends from, or says why not. When
   * the bound from the body's size does not fit, the upstream counts the input exactly; when that
   * does not fit either, `max_tokens` is lowered to what the budget still covers.
   */
  private async admit(
    grant: Grant,
    req: IncomingMessage,
    raw: Buffer,
    request: ModelRequest,
  ): Promise<{ request: ModelRequest; held: number; accounts: SpendAccount[] } | string> {
    const accounts: SpendAccount[] = [grant.account];
    if (this.o.tenantBudgets) accounts.push(await this.o.tenantBudgets.account(grant.g.tenantId));
    const available = () => Math.min(...accounts.map((a) => a.available()));
    const hold = (r: ModelRequest, inputTokens: number) => {
      const held = worstCaseUsd(this.o.prices, r, inputTokens);
      for (const a of accounts) a.hold(held);
      return { request: r, held, accounts };
    };
    let inputTokens = inputTokenBound(raw, request);
    if (worstCaseUsd(this.o.prices, request, inputTokens) <= available()) return hold(request, inputTokens);
    if (available() > 0)
      inputTokens = Math.min(inputTokens, (await this.countTokens(req, request)) ?? inputTokens);
    // Settled again after the count: other requests may have held meanwhile.
    if (worstCaseUsd(this.o.prices, request, inputTokens) <= available()) return hold(request, inputTokens);
    const clamped = clampToBudget(this.o.prices, request, inputTokens, available());
    if (clamped) return hold(clamped, inputTokens);
    const limited =
      grant.account.available() <= available() ? "this session's budget" : "the tenant's monthly budget";
    return `Berth: ${limited} cannot cover this request (USD ${Math.max(0, available()).toFixed(4)} left); the gateway refuses further model requests (budget_exceeded)`;
  }

  /** The upstream's exact input count of a request (null when it cannot say in time). */
  private async countTokens(req: IncomingMessage, r: ModelRequest): Promise<number | null> {
    const target = relayTarget("POST", "/v1/messages/count_tokens", this.upstream);
    if (!target) return null;
    const body = Buffer.from(
      JSON.stringify(
        Object.fromEntries(COUNTED_FIELDS.filter((k) => k in r.body).map((k) => [k, r.body[k]])),
      ),
    );
    try {
      const res = await fetch(target.url, {
        method: "POST",
        headers: upstreamHeaders(req.headers, this.o.apiKey ?? "", body.length),
        body,
        signal: AbortSignal.timeout(COUNT_TIMEOUT_MS),
      });
      const n = ((await res.json()) as { input_tokens?: unknown }).input_tokens;
      return res.ok && typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
    } catch (err) {
      this.o.log.warn({ err: String(err) }, "gateway: the upstream could not count a request's tokens");
      return null;
    }
  }

  /** Sends `body` to the upstream, streams the answer back, and meters it (for a grant). */
  private async relay(
    req: IncomingMessage,
    res: ServerResponse,
    target: RelayTarget,
    body: Buffer,
    grant: Grant | null,
    t0: number,
  ): Promise<{ status: number; costUsd: number } | null> {
    const send = target.url.protocol === "https:" ? httpsRequest : httpRequest;
    const upstream = send(target.url, {
      method: "POST",
      headers: upstreamHeaders(req.headers, this.o.apiKey ?? "", body.length),
    });
    res.on("close", () => upstream.destroy());
    upstream.end(body);
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      upstream.once("response", resolve);
      upstream.once("error", reject);
    });
    const status = answer.statusCode ?? 502;
    res.writeHead(status, answerHeaders(answer.headers));
    const meter = new UsageMeter(String(answer.headers["content-type"] ?? ""));
    answer.on("data", (chunk: Buffer) => {
      meter.feed(chunk);
      if (!res.write(chunk)) {
        answer.pause();
        res.once("drain", () => answer.resume());
      }
    });
    res.on("close", () => answer.destroy());
    await new Promise<void>((resolve) => answer.once("end", resolve).once("close", resolve));
    res.end();
    if (!grant) return null;
    const { usage, model } = meter.finish();
    let cost = 0;
    if (model) {
      if (!this.o.prices.isKnown(model)) this.o.onUnpriced?.(model);
      cost = this.o.prices.costOf(model, usage);
      grant.g.onUsage(usage, cost, model);
    }
    this.o.onRelayed?.((performance.now() - t0) / 1000, status, model ? usage : null, cost);
    return { status, costUsd: cost };
  }
}
