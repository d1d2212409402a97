import { promises as dns } from "node:dns";
import { connect, createServer, type Server, type Socket } from "node:net";
import { egressAddressAllowed, HostAddresses, hostAllowed, type Logger } from "@berth/core";
import { readSni } from "./client-hello.js";
import type { DnsClient } from "./dns-resolver.js";
import { type RequestEvent, RequestStream } from "./http-requests.js";

/** Largest ClientHello read before deciding. */
const MAX_HEAD = 16 * 1024;
const HEAD_TIMEOUT_MS = 10_000;
/** After a refused request, how long the upstream may take to finish the answers before it. */
const DRAIN_TIMEOUT_MS = 10_000;

export interface EgressProxyOptions {
  /** The sandbox behind a source address (allowlist sandboxes only get here). */
  clientFor(ip: string): DnsClient | undefined;
  /** Destinations a name may never resolve to (unless a CIDR of the sandbox allows it). */
  forbidden: string[];
  /** Upstream resolver, `ip[:port]`. */
  upstream: string;
  /** The host's own addresses (always refused); default: read from this host's interfaces. */
  hostAddresses?: HostAddresses;
  log?: Logger;
}

/**
 * The HTTP(S) side of `allowlist` egress. nftables sends a sandbox's connections to ports 80
 * and 443 here (unless the address is one of its allowlisted CIDRs). The proxy reads the Host
 * header of every request on a connection (or the TLS SNI), refuses names the sandbox may not
 * reach, resolves the name itself and connects to that address unless it is the host's own or
 * forbidden; TLS is passed through untouched. So a listed address shared with unlisted names (a
 * CDN) does not open those names, a listed name in Host/SNI cannot be steered to another
 * address, and a kept-alive connection cannot switch to another name after its first request.
 */
export class EgressProxy {
  private readonly servers: Server[] = [];
  private readonly resolver = new dns.Resolver({ timeout: 4_000, tries: 2 });
  private readonly host: HostAddresses;

  constructor(private readonly o: EgressProxyOptions) {
    this.resolver.setServers([o.upstream]);
    this.host = o.hostAddresses ?? new HostAddresses();
  }

  /** Listens for redirected HTTP and TLS connections; resolves with their ports. */
  async start(): Promise<{ http: number; tls: number }> {
    const listen = async (kind: "http" | "tls") => {
      // Half-open: a client may send its request and shut its side before the answer comes.
      const server = createServer({ allowHalfOpen: true }, (s) =>
        kind === "tls" ? this.handleTls(s) : this.handleHttp(s),
      );
      this.servers.push(server);
      await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
      return (server.address() as { port: number }).port;
    };
    return { http: await listen("http"), tls: await listen("tls") };
  }

  close(): void {
    for (const s of this.servers.splice(0)) s.close();
  }

  private clientOf(s: Socket): DnsClient | undefined {
    s.on("error", () => {});
    const client = this.o.clientFor((s.remoteAddress ?? "").replace(/^::ffff:/, ""));
    if (client?.egress === "allowlist") return client;
    s.destroy();
    return undefined;
  }

  /** TLS: the ClientHello's SNI decides; the rest passes through untouched. */
  private handleTls(s: Socket): void {
    const client = this.clientOf(s);
    if (!client) return;
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), HEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const name = readSni(head);
      if (name === undefined && head.length < MAX_HEAD) return;
      s.off("data", onData);
      s.pause();
      clearTimeout(timer);
      void this.open(client, name ?? null).then((target) => {
        if ("refuse" in target) return this.refused(s, client, name ?? null, target.refuse, false);
        const up = this.dial(s, target.address, 443, () => {
          up.write(head);
          s.pipe(up);
          up.pipe(s);
          s.resume();
        });
      });
    };
    s.on("data", onData);
  }

  /**
   * HTTP: every request head on the connection is read. The first one's Host picks the name and
   * the address; a later request naming another host is refused (after the answers to the
   * requests before it), and so is anything that cannot be framed unambiguously.
   */
  private handleHttp(s: Socket): void {
    const client = this.clientOf(s);
    if (!client) return;
    const requests = new RequestStream();
    const timer = setTimeout(() => s.destroy(), HEAD_TIMEOUT_MS);
    let name: string | null | undefined;
    let up: Socket | undefined;
    let connected = false;
    let refusing = false;
    const queued: RequestEvent[] = [];
    const refuse = (why: string) => {
      refusing = true;
      s.off("data", onData);
      s.pause();
      if (!up) return this.refused(s, client, name ?? null, why, true);
      // The upstream finishes what it was asked before; then the client gets the refusal.
      const u = up;
      const drain = setTimeout(() => u.destroy(), DRAIN_TIMEOUT_MS);
      u.once("close", () => {
        clearTimeout(drain);
        this.refused(s, client, name ?? null, why, true);
      });
      if (connected) u.end();
    };
    const forward = (events: RequestEvent[]) => {
      for (const e of events) {
        if (refusing) return;
        if (e.type === "bad") return refuse(`refused: ${e.why}`);
        if (e.type === "head" && e.head.host !== name)
          return refuse(
            `a connection opened for '${name}' may not ask for '${e.head.host ?? ""}'; open a new connection`,
          );
        up?.write(e.bytes);
      }
    };
    const onData = (chunk: Buffer) => {
      const events = requests.push(chunk);
      if (name === undefined) {
        const first = events.find((e) => e.type !== "bytes");
        if (!first) {
          queued.push(...events);
          return;
        }
        clearTimeout(timer);
        if (first.type === "bad") return refuse(`refused: ${first.why}`);
        name = first.head.host;
        queued.push(...events);
        s.pause();
        void this.open(client, name).then((target) => {
          if ("refuse" in target) return refuse(target.refuse);
          up = this.dial(s, target.address, 80, () => {
            connected = true;
            // Not ended with the upstream: a refusal may still have to follow its last answer.
            up?.pipe(s, { end: false });
            up?.once("end", () => refusing || s.end());
            forward(queued.splice(0));
            if (refusing) up?.end();
            else s.resume();
          });
        });
        return;
      }
      if (!connected) queued.push(...events);
      else forward(events);
    };
    s.on("data", onData);
    s.on("end", () => {
      if (!refusing) up?.end();
    });
  }

  /** Where the sandbox's request for `name` goes: the name's first permitted address, or why not. */
  private async open(
    client: DnsClient,
    name: string | null,
  ): Promise<{ address: string } | { refuse: string }> {
    if (!name) return { refuse: "the request names no host" };
    if (!hostAllowed(name, client.hosts))
      return { refuse: `egress to '${name}' is not in this sandbox's allowlist` };
    let ips: string[];
    try {
      ips = await this.resolver.resolve4(name);
    } catch {
      return { refuse: `'${name}' does not resolve` };
    }
    const ok = ips.filter((ip) =>
      egressAddressAllowed(ip, { host: this.host, cidrs: client.cidrs, extraForbidden: this.o.forbidden }),
    );
    if (ok.length === 0) return { refuse: `'${name}' resolves to this host or a forbidden address` };
    return { address: ok[0]! };
  }

  /** Connects to the upstream; a failure or a close on either side ends both. */
  private dial(s: Socket, address: string, port: number, onConnect: () => void): Socket {
    const up = connect({ host: address, port, allowHalfOpen: true });
    up.setNoDelay(true);
    up.on("error", () => s.destroy());
    up.once("connect", onConnect);
    s.on("close", () => up.destroy());
    return up;
  }

  private refused(s: Socket, client: DnsClient, name: string | null, why: string, http: boolean): void {
    this.o.log?.info({ sandboxId: client.id, name, why }, "egress proxy refused");
    if (!http || s.destroyed) return void s.destroy();
    const body = `berth: ${why}\n`;
    s.end(
      `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}
