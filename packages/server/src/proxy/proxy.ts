import { type IncomingMessage, request, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import {
  BadGatewayError,
  BerthError,
  ConflictError,
  InternalError,
  type Logger,
  NotFoundError,
  type PortRecord,
  type Runtime,
} from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import type { ServerMetrics } from "../metrics.js";
import { FORWARDED_BY } from "../replicas/forwarded.js";
import type { EventHub } from "../sandboxes/event-hub.js";
import type { SandboxService, WakeReport } from "../sandboxes/service.js";
import { AgentPool } from "./agents.js";
import {
  isSecure,
  type PresentedToken,
  presentedToken,
  requestHeadersForSandbox,
  responseHeadersForClient,
  tokenCookie,
  withoutToken,
} from "./headers.js";
import { checkToken, type PortService } from "./ports.js";
import { type ProxyTarget, proxyTargetOf } from "./target.js";

/** The listener a request came in on: the API's (and dashboard's) or the preview listener. */
export type Listener = "api" | "preview";

/** A request's right to a port, once checked. */
interface Grant {
  client: SupervisorClient;
  presented: PresentedToken | undefined;
}

/** An exposed port of a running sandbox, as last read from the store. */
interface ReadyPort {
  record: PortRecord;
  client: SupervisorClient;
  until: number;
}

/**
 * How long a port's record and its sandbox's running state are trusted without reading the
 * store again. Local changes (expose, unexpose, every state change) drop the entry at once;
 * the bound is for changes made by another server sharing the store.
 */
const READY_TTL_MS = 1_000;

/** States after which no pooled connection to the sandbox can still work. */
const ENDS_CONNECTIONS = new Set(["hibernated", "deleted", "failed"]);

/**
 * The reverse proxy in front of exposed ports. Requests bypass the API's router: they are
 * checked against the port's token, then sent over pooled keep-alive connections that
 * berth-init relays to the port inside the sandbox. Bodies stream both ways (never buffered),
 * SSE passes through as it comes, and upgrades (WebSocket) are relayed as raw bytes.
 */
export class SandboxProxy {
  private readonly agents: AgentPool;
  /** Responses and upgraded sockets in flight, ended when the server closes. */
  private readonly open = new Set<ServerResponse | Duplex>();
  /** Ports whose requests need no store read: each request then only costs its token's hash. */
  private readonly ready = new Map<string, ReadyPort>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly d: {
      ports: PortService;
      sandboxes: SandboxService;
      runtime: Runtime;
      events: EventHub;
      metrics: ServerMetrics;
      previewDomain: string | undefined;
      log: Logger;
    },
  ) {
    this.agents = new AgentPool({
      address: (id) => this.d.runtime.addressing.address(id),
      dial: (id, port) => this.d.sandboxes.client(id).dial(port),
    });
    // Any lifecycle event (pause, hibernate, delete, failure...) may end what an entry promises.
    this.unsubscribe = this.d.events.subscribeAll((e) => {
      this.forgetReady(e.sandboxId);
      // Pooled connections die with the sandbox's processes: drop them with it.
      if (e.type === "state" && ENDS_CONNECTIONS.has(String(e.data.state))) this.agents.drop(e.sandboxId);
    });
  }

  /**
   * Where a request goes, or undefined when it is not for an exposed port. Path previews are
   * served on the preview listener; the API's listener takes them only from another replica's
   * preview listener, which relays them there with its header (a browser cannot add a header
   * to a navigation, so no page of the API's origin is ever a sandbox's).
   */
  target(req: IncomingMessage, listener: Listener): ProxyTarget | undefined {
    const paths = listener === "preview" || req.headers[FORWARDED_BY] !== undefined;
    return proxyTargetOf(req, this.d.previewDomain, paths);
  }

  /** Forgets pooled connections to a port that is no longer exposed. */
  forget(sandboxId: string, port?: number): void {
    this.forgetReady(sandboxId, port);
    this.agents.drop(sandboxId, port);
  }

  private forgetReady(sandboxId: string, port?: number): void {
    if (port !== undefined) this.ready.delete(`${sandboxId}:${port}`);
    else for (const key of this.ready.keys()) if (key.startsWith(`${sandboxId}:`)) this.ready.delete(key);
  }

  /** Proxies one HTTP request. */
  handleRequest(req: IncomingMessage, res: ServerResponse, target: ProxyTarget): void {
    this.open.add(res);
    res.once("close", () => this.open.delete(res));
    const report: WakeReport = { header: (name, value) => res.setHeader(name, value) };
    this.authorize(req, target, report).then(
      (grant) => {
        // A request in flight (a long poll, an SSE stream) keeps the sandbox busy for idle policies.
        res.once("close", this.d.sandboxes.activity.hold(target.sandboxId));
        if (target.addSlash) return this.redirectWithSlash(req, res, target, grant);
        this.forward(req, res, target, grant, false);
      },
      (err: unknown) => this.fail(res, err, target),
    );
  }

  /** Relays an upgrade (a WebSocket) to the port once the request is allowed. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: ProxyTarget): void {
    socket.on("error", () => socket.destroy());
    this.open.add(socket);
    socket.once("close", () => this.open.delete(socket));
    const touch = () => this.d.sandboxes.touch(target.sandboxId);
    this.authorize(req, target)
      .then(async (grant) => {
        const upstream = await grant.client.dial(target.port).catch((e: unknown) => {
          throw this.gatewayError(e, target);
        });
        if (socket.destroyed) return upstream.destroy();
        // An open WebSocket keeps the sandbox busy for idle policies, quiet or not.
        socket.once("close", this.d.sandboxes.activity.hold(target.sandboxId));
        const path = grant.presented?.from === "query" ? withoutToken(target.path) : target.path;
        const headers = requestHeadersForSandbox(req, target, { upgrade: true });
        let text = `${req.method} ${path} HTTP/1.1\r\n`;
        for (const [k, v] of Object.entries(headers))
          for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
        upstream.write(`${text}\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.on("error", () => socket.destroy());
        upstream.on("close", () => socket.destroy());
        socket.on("close", () => upstream.destroy());
        const m = this.d.metrics;
        upstream.on("data", (c: Buffer) => {
          m.proxyBytesOut += c.length;
          touch();
        });
        socket.on("data", (c: Buffer) => {
          m.proxyBytesIn += c.length;
          touch();
        });
        upstream.pipe(socket);
        socket.pipe(upstream);
      })
      .catch((err: unknown) => {
        if (socket.destroyed) return;
        const be = this.clientError(err, target);
        const body = JSON.stringify(be.toBody());
        socket.end(
          `HTTP/1.1 ${be.status} ${STATUS_CODES[be.status] ?? "Error"}\r\ncontent-type: application/json; charset=utf-8\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      });
  }

  /** Ends everything in flight and every pooled connection. */
  close(): void {
    this.unsubscribe();
    this.ready.clear();
    for (const x of this.open) x.destroy();
    this.open.clear();
    this.agents.close();
  }

  /**
   * The request's right to the port (token checked before anything else happens, so nobody
   * without it can wake a sandbox), then the sandbox, running: a paused or hibernated one is
   * woken. A sandbox that is gone or not live answers 404 like an unexposed port.
   */
  private async authorize(req: IncomingMessage, target: ProxyTarget, report?: WakeReport): Promise<Grant> {
    const presented = presentedToken(req, target);
    const key = `${target.sandboxId}:${target.port}`;
    const hit = this.ready.get(key);
    if (hit && hit.until > performance.now()) {
      checkToken(hit.record, presented?.token);
      this.d.sandboxes.touch(target.sandboxId);
      return { client: hit.client, presented };
    }
    const port = await this.d.ports.authorize(target.sandboxId, target.port, presented?.token);
    let woken = false;
    const noting: WakeReport = {
      header: (name, value) => {
        woken = true;
        return report?.header(name, value);
      },
    };
    let client: SupervisorClient;
    try {
      ({ client } = await this.d.sandboxes.running(port.tenantId, target.sandboxId, noting));
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError)
        throw new NotFoundError("sandbox", target.sandboxId);
      throw err;
    }
    // A woken sandbox's server (a `restart: "on-wake"` process) needs a moment to listen again.
    if (woken) await waitForListener(client, target.port, WAKE_LISTEN_WAIT_MS);
    else this.ready.set(key, { record: port, client, until: performance.now() + READY_TTL_MS });
    return { client, presented };
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: ProxyTarget,
    grant: Grant,
    retry: boolean,
  ): void {
    const id = target.sandboxId;
    const bodiless =
      req.headers["transfer-encoding"] === undefined &&
      (req.headers["content-length"] === undefined || req.headers["content-length"] === "0");
    const up = request({
      agent: this.agents.get(id, target.port),
      method: req.method,
      path: grant.presented?.from === "query" ? withoutToken(target.path) : target.path,
      headers: requestHeadersForSandbox(req, target, { upgrade: false }),
    });
    up.on("response", (answer) => {
      const headers = responseHeadersForClient(answer.headers);
      if (grant.presented?.from === "query") {
        const cookie = tokenCookie(grant.presented.token, target, isSecure(req));
        const prior = headers["set-cookie"];
        headers["set-cookie"] = prior === undefined ? [cookie] : [...(prior as string[]), cookie];
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      // A stream (SSE, chunked) shows its headers now, not with its first chunk.
      if (headers["content-length"] === undefined) res.flushHeaders();
      answer.on("data", (c: Buffer) => {
        this.d.metrics.proxyBytesOut += c.length;
        this.d.sandboxes.touch(id);
      });
      answer.on("error", () => res.destroy());
      answer.on("aborted", () => res.destroy());
      answer.pipe(res);
    });
    up.on("error", (err) => {
      if (res.headersSent) return res.destroy();
      // A kept-alive connection the sandbox closed just as it was reused: once more, afresh.
      if (!retry && up.reusedSocket && bodiless && !res.destroyed)
        return this.forward(req, res, target, grant, true);
      this.fail(res, this.gatewayError(err, target), target);
    });
    res.once("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    if (bodiless) {
      req.resume();
      up.end();
    } else {
      req.on("data", (c: Buffer) => {
        this.d.metrics.proxyBytesIn += c.length;
      });
      req.pipe(up);
    }
  }

  /** `/p/<id>/<port>` -> `/p/<id>/<port>/` (so relative links stay inside the port). */
  private redirectWithSlash(req: IncomingMessage, res: ServerResponse, target: ProxyTarget, grant: Grant) {
    const path = grant.presented?.from === "query" ? withoutToken(target.path) : target.path;
    const headers: Record<string, string | string[]> = {
      location: `${target.prefix}${path}`,
      "content-length": "0",
    };
    if (grant.presented?.from === "query")
      headers["set-cookie"] = [tokenCookie(grant.presented.token, target, isSecure(req))];
    req.resume();
    res.writeHead(308, headers).end();
  }

  private gatewayError(err: unknown, target: ProxyTarget): BerthError {
    const where = `port ${target.port} in sandbox ${target.sandboxId}`;
    if (err instanceof BerthError && err.details?.errno === "ECONNREFUSED")
      return new BadGatewayError(`nothing is listening on ${where}`);
    if (err instanceof BerthError && err.status < 500) return err;
    return new BadGatewayError(`the connection to ${where} broke before it answered`);
  }

  private clientError(err: unknown, target: ProxyTarget): BerthError {
    if (err instanceof BerthError) return err;
    this.d.log.error({ sandboxId: target.sandboxId, port: target.port, err: String(err) }, "proxy failed");
    return new InternalError();
  }

  private fail(res: ServerResponse, err: unknown, target: ProxyTarget): void {
    const be = this.clientError(err, target);
    this.d.log.debug({ sandboxId: target.sandboxId, port: target.port, code: be.code }, "proxy refused");
    if (res.headersSent || res.destroyed) return void res.destroy();
    const body = JSON.stringify(be.toBody());
    res.writeHead(be.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    res.end(body);
  }
}

/** How long a request that woke its sandbox waits for the port to accept connections. */
const WAKE_LISTEN_WAIT_MS = 10_000;

/** Dials `port` until it accepts or `ms` pass (then the request's own dial reports the 502). */
async function waitForListener(client: SupervisorClient, port: number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  for (let pause = 20; performance.now() < deadline; pause = Math.min(pause * 2, 250)) {
    try {
      (await client.dial(port)).destroy();
      return;
    } catch (err) {
      if (!(err instanceof BerthError && err.details?.errno === "ECONNREFUSED")) return;
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/**
 * Puts the proxy in front of the API's own request and upgrade listeners: requests for an
 * exposed port (by preview host, or by path when relayed by another replica) go to the proxy,
 * everything else to the app.
 */
export function installProxy(server: Server, proxy: SandboxProxy): void {
  const app = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  const upgrades = server.listeners("upgrade") as ((req: IncomingMessage, s: Duplex, head: Buffer) => void)[];
  server.removeAllListeners("request");
  server.removeAllListeners("upgrade");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const t = proxy.target(req, "api");
    if (t) proxy.handleRequest(req, res, t);
    else for (const l of app) l.call(server, req, res);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const t = proxy.target(req, "api");
    if (t) proxy.handleUpgrade(req, socket, head, t);
    else if (upgrades.length === 0) socket.destroy();
    else for (const l of upgrades) l.call(server, req, socket, head);
  });
}
