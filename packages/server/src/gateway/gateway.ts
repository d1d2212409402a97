import { createHash, randomBytes } from "node:crypto";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger, SessionUsage } from "@berth/core";
import { noUsage, type PriceTable } from "./prices.js";

/** Why the gateway refused a session's model request, or the upstream failed it. */
export interface ModelFailure {
  code: "budget_exceeded" | "model_error" | "model_unavailable";
  message: string;
  upstreamStatus?: number;
}

/** What the gateway knows of a session that may use it. */
export interface GatewayGrant {
  sessionId: string;
  /** USD the session may spend on tokens (null: no budget). */
  budgetUsd: number | null;
  /** USD spent so far (kept up to date by the gateway). */
  spentUsd: number;
  /** Called after each answer with the usage it carried and its cost. */
  onUsage(usage: SessionUsage, costUsd: number, model: string): void;
  /** Called when a request is refused (budget, no key) or the upstream answers >= 400. */
  onFailure?: (f: ModelFailure) => void;
}

/** A per-session token: long, random, and never the real key. */
export type GatewayToken = string;

/** Request headers that are not passed on (hop-by-hop, and the session's own credentials). */
const DROPPED = new Set([
  "host",
  "connection",
  "x-api-key",
  "authorization",
  "keep-alive",
  "transfer-encoding",
]);

/**
 * The model gateway: agents in sandboxes call it with a per-session token in place of an API
 * key; it checks the token, refuses sessions past their budget, swaps in the real key, forwards
 * to the upstream Messages API, streams the answer back unchanged and meters the usage it carries.
 */
export class ModelGateway {
  private readonly grants = new Map<string, GatewayGrant>();
  private server: Server | null = null;

  constructor(
    private readonly o: {
      upstream: string;
      apiKey: string | undefined;
      prices: PriceTable;
      log: Logger;
      /** Who may connect (by remote IPv4/IPv6 address): sandboxes' range and loopback. */
      allowFrom?: (address: string) => boolean;
      /** Called when an answer has been relayed: its duration, status, usage and cost (for metrics). */
      onRelayed?: (seconds: number, status: number, usage: SessionUsage | null, costUsd: number) => void;
    },
  ) {}

  /** Listens on every address at `port` (0: any free one); sandboxes reach it at their host address. */
  async start(port: number): Promise<number> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.o.log.warn({ err: String(err) }, "gateway: request failed");
        if (!res.headersSent) refuse(res, 502, "api_error", "the model gateway could not reach the model");
        else res.destroy();
      });
    });
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
    this.grants.set(hash(token), g);
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
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
    const token = String(req.headers["x-api-key"] ?? bearer ?? "");
    const grant = token ? this.grants.get(hash(token)) : undefined;
    if (!grant) return refuse(res, 401, "authentication_error", "unknown or expired Berth session token");
    if (grant.budgetUsd !== null && grant.spentUsd >= grant.budgetUsd) {
      const message = `Berth: this session's budget of USD ${grant.budgetUsd} is spent (USD ${grant.spentUsd.toFixed(4)}); the gateway refuses further model requests`;
      grant.onFailure?.({ code: "budget_exceeded", message });
      return refuse(res, 400, "invalid_request_error", message);
    }
    if (!this.o.apiKey) {
      const message = "Berth has no model API key (set BERTH_ANTHROPIC_API_KEY)";
      grant.onFailure?.({ code: "model_unavailable", message });
      return refuse(res, 503, "api_error", message);
    }
    // The upstream's own path prefix (if any) stays in front of the request's path.
    const base = new URL(this.o.upstream);
    const target = new URL(`${base.pathname.replace(/\/$/, "")}${req.url ?? "/"}`, base.origin);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROPPED.has(k)) headers[k] = v;
    headers["x-api-key"] = this.o.apiKey;
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const upstream = send(target, { method: req.method, headers });
    req.pipe(upstream);
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      upstream.once("response", resolve);
      upstream.once("error", reject);
    });
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    const status = answer.statusCode ?? 502;
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
    if (status >= 400)
      grant.onFailure?.({ code: "model_error", message: meter.failure(status), upstreamStatus: status });
    res.end();
    const { usage, model } = meter.finish();
    let cost = 0;
    if (model) {
      cost = this.o.prices.costOf(model, usage);
      grant.spentUsd += cost;
      grant.onUsage(usage, cost, model);
    }
    this.o.onRelayed?.((performance.now() - t0) / 1000, answer.statusCode ?? 502, model ? usage : null, cost);
  }
}

function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** An error in the Messages API's own shape, so the SDK shows its message. */
function refuse(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ type: "error", error: { type, message } }));
}

/** Reads usage from a streamed (SSE) or whole JSON Messages API answer as it passes. */
class UsageMeter {
  private readonly sse: boolean;
  private text = "";
  private readonly usage = noUsage();
  private model = "";

  constructor(contentType: string) {
    this.sse = contentType.includes("text/event-stream");
  }

  feed(chunk: Buffer): void {
    this.text += chunk.toString("utf8");
    if (!this.sse) return;
    let nl = this.text.indexOf("\n");
    while (nl >= 0) {
      const line = this.text.slice(0, nl).trim();
      this.text = this.text.slice(nl + 1);
      if (line.startsWith("data:")) this.event(line.slice(5).trim());
      nl = this.text.indexOf("\n");
    }
  }

  /** What an error answer said (`type: message` of the API's error body), for a person. */
  failure(status: number): string {
    try {
      const e = (JSON.parse(this.text) as { error?: { type?: string; message?: string } }).error;
      if (e?.message)
        return `the model API answered ${status} (${e.type ?? "error"}: ${e.message.slice(0, 300)})`;
    } catch {
      // Not JSON: the status says enough.
    }
    return `the model API answered ${status}`;
  }

  finish(): { usage: SessionUsage; model: string } {
    if (!this.sse && this.text) {
      try {
        const m = JSON.parse(this.text) as { model?: string; usage?: Record<string, number> };
        if (m.model && m.usage) {
          this.model = m.model;
          this.add(m.usage, true);
        }
      } catch {
        // Not a message: nothing to meter.
      }
    }
    return { usage: this.usage, model: this.model };
  }

  private event(data: string): void {
    let e: {
      type?: string;
      message?: { model?: string; usage?: Record<string, number> };
      usage?: Record<string, number>;
    };
    try {
      e = JSON.parse(data);
    } catch {
      return;
    }
    if (e.type === "message_start" && e.message) {
      this.model = e.message.model ?? this.model;
      this.add(e.message.usage ?? {}, false);
    } else if (e.type === "message_delta" && e.usage) {
      // message_delta carries the final (cumulative) output count.
      this.usage.outputTokens = e.usage.output_tokens ?? this.usage.outputTokens;
    }
  }

  private add(u: Record<string, number>, withOutput: boolean): void {
    this.usage.inputTokens += u.input_tokens ?? 0;
    this.usage.cacheReadTokens += u.cache_read_input_tokens ?? 0;
    this.usage.cacheCreationTokens += u.cache_creation_input_tokens ?? 0;
    if (withOutput) this.usage.outputTokens += u.output_tokens ?? 0;
  }
}
