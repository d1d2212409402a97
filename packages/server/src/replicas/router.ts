import { type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { BerthError, FINAL_SESSION_STATES, type Logger, type Store } from "@berth/core";
import { routedPath } from "../http/request-path.js";
import type { Listener } from "../proxy/proxy.js";
import { hostOf } from "../proxy/target.js";
import { FORWARDED_BY } from "./forwarded.js";

export { FORWARDED_BY };

/** How long "sandbox X is held by replica R at URL" is trusted before asking the store again. */
const OWNER_TTL_MS = 2_000;
/** How often the number of replicas sharing the store is looked up (one alone: no lookups). */
const REPLICAS_TTL_MS = 5_000;

const SANDBOX_PATH = /^\/v1\/sandboxes\/(sb[a-z0-9]{16})(?:[/?]|$)/;
const PREVIEW_PATH = /^\/p\/(sb[a-z0-9]{16})(?:[/?]|$)/;
const SNAPSHOT_PATH = /^\/v1\/snapshots\/(sn[a-z0-9]{6,40})(?:[/?]|$)/;
const PREVIEW_LABEL = /^\d{1,5}-(sb[a-z0-9]{16})$/;
/**
 * What needs a session's live agent process, which runs on the replica holding its sandbox
 * (reads of the session, its event stream included, come from the store on any replica).
 */
const SESSION_LIVE_PATH = /^\/v1\/sessions\/(ses_[a-z0-9]{6,40})\/(?:messages|interrupt)(?:[/?]|$)/;
const SESSION_PATH = /^\/v1\/sessions\/(ses_[a-z0-9]{6,40})(?:\?|$)/;

/**
 * Sends each request about a sandbox (API calls, its exposed ports) or a snapshot to the
 * replica whose runtime holds it, when that is another server sharing the store: the request
 * and its answer stream through unchanged (upgrades too), so any replica answers any request.
 * A replica that does not answer gives 503 `replica_unavailable`.
 */
export class ReplicaRouter {
  private readonly owners = new Map<string, { url: string | null; until: number }>();
  private alone = { value: true, until: 0 };

  constructor(
    private readonly d: {
      store: Store;
      replica: string;
      previewDomain: string | undefined;
      log: Logger;
    },
  ) {}

  /** The URL of the replica to forward `req` (come in on `listener`) to, or null to answer here. */
  async destinationOf(req: IncomingMessage, listener: Listener): Promise<string | null> {
    if (req.headers[FORWARDED_BY] !== undefined) return null;
    const key = this.keyOf(req, listener);
    if (!key || (await this.isAlone())) return null;
    const hit = this.owners.get(key);
    if (hit && hit.until > Date.now()) return hit.url;
    const url = await this.lookUp(key);
    if (this.owners.size > 100_000) this.owners.clear();
    this.owners.set(key, { url, until: Date.now() + OWNER_TTL_MS });
    return url;
  }

  /** Relays an HTTP request to `base` and its answer back. */
  forward(req: IncomingMessage, res: ServerResponse, base: string): void {
    const target = new URL(req.url ?? "/", base);
    const up = request(target, {
      method: req.method,
      headers: { ...req.headers, [FORWARDED_BY]: this.d.replica },
    });
    up.on("response", (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
      if (answer.headers["content-length"] === undefined) res.flushHeaders();
      answer.pipe(res);
      answer.on("error", () => res.destroy());
    });
    up.on("error", (err) => this.unavailable(res, base, err));
    res.once("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  /** Relays an upgrade (WebSocket) to `base` as raw bytes. */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, base: string): void {
    const target = new URL(base);
    const up = connect(Number(target.port || 80), target.hostname.replace(/^\[|\]$/g, ""));
    socket.on("error", () => up.destroy());
    up.on("error", (err) => {
      this.d.log.warn({ replica: base, err: String(err) }, "replica did not answer an upgrade");
      socket.destroy();
    });
    up.once("connect", () => {
      let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${text}${FORWARDED_BY}: ${this.d.replica}\r\n\r\n`);
      if (head.length > 0) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    socket.once("close", () => up.destroy());
    up.once("close", () => socket.destroy());
  }

  private unavailable(res: ServerResponse, base: string, err: Error): void {
    this.d.log.warn({ replica: base, err: String(err) }, "replica did not answer");
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify(
      new BerthError(
        "replica_unavailable",
        `the server that holds this sandbox or session (${base}) does not answer; it is served again once that server is back`,
      ).toBody(),
    );
    res.writeHead(503, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  private keyOf(req: IncomingMessage, listener: Listener): string | null {
    const raw = req.url ?? "/";
    // API paths as the router will match them (`/%761/sandboxes/...` is `/v1/sandboxes/...`);
    // preview paths as the proxy matches them, byte for byte.
    const url = listener === "api" ? (routedPath(raw) ?? raw) : raw;
    // Path previews only from the preview listener: relayed, they are served by the other
    // replica's API listener, which must never do that for a request made to an API origin.
    const sb = (listener === "preview" ? PREVIEW_PATH : SANDBOX_PATH).exec(url);
    if (sb) return `sandbox:${sb[1]}`;
    if (listener === "preview") return this.previewHostKey(req);
    const sn = SNAPSHOT_PATH.exec(url);
    if (sn) return `snapshot:${sn[1]}`;
    // A session's agent runs on the replica that holds its sandbox.
    const se = SESSION_LIVE_PATH.exec(url) ?? (req.method === "DELETE" ? SESSION_PATH.exec(url) : null);
    if (se) return `session:${se[1]}`;
    return this.previewHostKey(req);
  }

  /** A preview host `<port>-<sandboxId>.<domain>`'s sandbox, when a preview domain is set. */
  private previewHostKey(req: IncomingMessage): string | null {
    const domain = this.d.previewDomain;
    const host = hostOf(req);
    if (domain && host.endsWith(`.${domain}`)) {
      const m = PREVIEW_LABEL.exec(host.slice(0, -domain.length - 1));
      if (m) return `sandbox:${m[1]}`;
    }
    return null;
  }

  private async lookUp(key: string): Promise<string | null> {
    const [kind, id] = key.split(":") as [string, string];
    let sandboxId = id;
    if (kind === "session") {
      const s = await this.d.store.getSession(id);
      // An ended session has no agent left: any replica answers (409s, an idempotent DELETE).
      if (!s || FINAL_SESSION_STATES.includes(s.state)) return null;
      sandboxId = s.sandboxId;
    }
    const replica =
      kind === "snapshot"
        ? await this.d.store.replicaOf("snapshots", id)
        : ((await this.d.store.getSandbox(sandboxId))?.replica ?? null);
    if (!replica || replica === this.d.replica) return null;
    return (await this.d.store.getReplica(replica))?.url ?? null;
  }

  private async isAlone(): Promise<boolean> {
    if (this.alone.until > Date.now()) return this.alone.value;
    const value = (await this.d.store.countReplicas()) <= 1;
    this.alone = { value, until: Date.now() + REPLICAS_TTL_MS };
    return value;
  }
}

/**
 * Puts the replica router in front of everything else the server answers (the proxy and the
 * API): a request for another replica's sandbox is relayed there, the rest is served here.
 */
export function installReplicaRouter(
  server: Server,
  router: ReplicaRouter,
  log: Logger,
  listener: Listener,
): void {
  const inner = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  const innerUpgrades = server.listeners("upgrade") as ((
    req: IncomingMessage,
    s: Duplex,
    h: Buffer,
  ) => void)[];
  server.removeAllListeners("request");
  server.removeAllListeners("upgrade");
  const local = (req: IncomingMessage, res: ServerResponse) => {
    for (const l of inner) l.call(server, req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    router.destinationOf(req, listener).then(
      (to) => (to ? router.forward(req, res, to) : local(req, res)),
      (err: unknown) => {
        log.error({ err: String(err) }, "replica lookup failed; answering here");
        local(req, res);
      },
    );
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    router.destinationOf(req, listener).then(
      (to) => {
        if (to) router.forwardUpgrade(req, socket, head, to);
        else for (const l of innerUpgrades) l.call(server, req, socket, head);
      },
      () => {
        for (const l of innerUpgrades) l.call(server, req, socket, head);
      },
    );
  });
}
