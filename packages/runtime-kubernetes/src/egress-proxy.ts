/**
 * The filtering proxy of sandbox Pods' web traffic: what the local driver's egress proxy is, for
 * a cluster, where nothing can redirect a Pod's connections. Every process in a sandbox Pod gets
 * HTTP_PROXY/HTTPS_PROXY pointing here (Runtime.processEnv); its NetworkPolicy lets it reach this
 * address. The proxy knows the sandbox by the connection's source (its Pod IP), checks the name
 * asked for (CONNECT's authority, or the absolute URL of a plain HTTP request) against the
 * sandbox's egress policy, resolves it itself and refuses names that resolve into private
 * ranges. TLS passes through untouched. Clients that ignore the proxy variables reach only what
 * the NetworkPolicy allows (the listed CIDRs): hostname allowlists fail closed.
 */
import { promises as dns } from "node:dns";
import { connect, createServer, isIPv4, type Server, type Socket } from "node:net";
import {
  egressAddressAllowed,
  HostAddresses,
  hostAllowed,
  inCidr,
  type Logger,
  type NetworkPolicy,
  parseAllowlist,
  silentLogger,
} from "@berth/core";

const MAX_HEAD = 16 * 1024;
const HEAD_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface PodEgressProxyOptions {
  /** The egress policy of the sandbox whose Pod has this address; null: not one of ours. */
  policyOf(podIp: string): Promise<NetworkPolicy | null>;
  /** DNS server names are resolved with (`ip[:port]`); unset: the host's. */
  resolver?: string;
  /** The addresses of the proxy's own host (never a destination); default: its interfaces'. */
  hostAddresses?: HostAddresses;
  log?: Logger;
}

/** Where a request may go, or why not. */
type Decision = { address: string } | { refuse: string };

export class PodEgressProxy {
  private server: Server | null = null;
  private readonly resolver = new dns.Resolver({ timeout: 4_000, tries: 2 });
  private readonly log: Logger;
  private readonly host: HostAddresses;

  constructor(private readonly o: PodEgressProxyOptions) {
    if (o.resolver) this.resolver.setServers([o.resolver]);
    this.log = o.log ?? silentLogger;
    this.host = o.hostAddresses ?? new HostAddresses();
  }

  /** Listens on every address at `port` (0: any free one); resolves with the port once it does. */
  async start(port: number): Promise<number> {
    // Half-open: a client may send its request and shut its side before the answer comes.
    const server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "0.0.0.0", () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }

  /** Reads the request head (bounded in size and time), then routes it. */
  private accept(sock: Socket): void {
    sock.on("error", () => {});
    sock.setTimeout(HEAD_TIMEOUT_MS, () => sock.destroy());
    let head = Buffer.alloc(0);
    let routed = false;
    sock.once("end", () => routed || sock.destroy());
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD) refuse(sock, 431, "request head too large");
        return;
      }
      sock.off("data", onData);
      routed = true;
      sock.pause();
      sock.setTimeout(0);
      this.route(sock, head.subarray(0, end + 4).toString("latin1"), head.subarray(end + 4)).catch((err) => {
        this.log.warn({ err: String(err) }, "egress proxy: request failed");
        refuse(sock, 502, "the proxy could not serve this request");
      });
    };
    sock.on("data", onData);
  }

  private async route(sock: Socket, head: string, rest: Buffer): Promise<void> {
    const [line = "", ...headers] = head.slice(0, -4).split("\r\n");
    const m = /^([A-Z]{3,10}) (\S{1,8192}) HTTP\/1\.[01]$/.exec(line);
    if (!m) return refuse(sock, 400, "not an HTTP/1 proxy request");
    const [, method, target] = m as unknown as [string, string, string];
    let host: string;
    let port: number;
    let forward: string | null = null;
    if (method === "CONNECT") {
      const a = /^([a-zA-Z0-9.-]{1,253}):(\d{1,5})$/.exec(target);
      if (!a) return refuse(sock, 400, "CONNECT takes host:port");
      host = a[1] as string;
      port = Number(a[2]);
    } else {
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        return refuse(sock, 400, "a proxied request needs an absolute http:// URL");
      }
      if (url.protocol !== "http:") return refuse(sock, 400, "only http:// URLs (use CONNECT for TLS)");
      host = url.hostname;
      port = Number(url.port || 80);
      // The origin sees an ordinary request: origin-form target, no proxy credentials.
      const kept = headers.filter((h) => !/^proxy-/i.test(h));
      forward = `${method} ${url.pathname}${url.search} HTTP/1.1\r\n${kept.join("\r\n")}\r\n\r\n`;
    }
    if (port < 1 || port > 65535) return refuse(sock, 400, "bad port");
    const client = (sock.remoteAddress ?? "").replace(/^::ffff:/, "");
    const decision = await this.decide(await this.o.policyOf(client), host.toLowerCase());
    if ("refuse" in decision) {
      this.log.info({ client, host, why: decision.refuse }, "egress proxy: refused");
      return refuse(sock, 403, decision.refuse);
    }
    const upstream = connect({
      host: decision.address,
      port,
      timeout: CONNECT_TIMEOUT_MS,
      allowHalfOpen: true,
    });
    upstream.once("timeout", () => upstream.destroy(new Error("connect timed out")));
    let connected = false;
    // A client gone while the upstream connects leaves nothing open behind it.
    sock.once("close", () => connected || upstream.destroy());
    upstream.once("error", () => {
      if (!connected) refuse(sock, 502, `could not reach ${host}:${port}`);
      else sock.destroy();
    });
    upstream.once("connect", () => {
      connected = true;
      upstream.setTimeout(0);
      if (forward === null) sock.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      else upstream.write(forward);
      if (rest.length > 0) upstream.write(rest);
      sock.pipe(upstream).on("error", () => {});
      upstream.pipe(sock);
      // Ends pass through the pipes; a reset on either side resets the other.
      sock.once("close", (hadError) => hadError && upstream.destroy());
      upstream.once("close", (hadError) => hadError && sock.destroy());
      sock.resume();
    });
  }

  /** Applies the sandbox's policy to a name or address, resolving names here. */
  private async decide(policy: NetworkPolicy | null, host: string): Promise<Decision> {
    if (!policy) return { refuse: "this proxy serves only this server's sandboxes" };
    if (policy.egress === "none") return { refuse: "the sandbox's egress is none" };
    const { cidrs, hosts } =
      policy.egress === "allowlist" ? parseAllowlist(policy.allow) : { cidrs: [], hosts: [] };
    // Never the proxy's own host; a forbidden range only when one of the sandbox's CIDRs lists it.
    const reachable = (ip: string) => egressAddressAllowed(ip, { host: this.host, cidrs });
    if (isIPv4(host)) {
      if (reachable(host) && (policy.egress === "open" || cidrs.some((c) => inCidr(host, c))))
        return { address: host };
      return { refuse: `${host} is not allowed by the sandbox's egress policy` };
    }
    if (!/^[a-z0-9.-]{1,253}$/.test(host)) return { refuse: "only IPv4 addresses and host names" };
    if (policy.egress === "allowlist" && !hostAllowed(host, hosts))
      return { refuse: `${host} is not in the sandbox's allowlist` };
    let addresses: string[];
    try {
      addresses = await this.resolver.resolve4(host);
    } catch {
      return { refuse: `${host} does not resolve` };
    }
    if (addresses.length === 0) return { refuse: `${host} does not resolve` };
    const address = addresses.find(reachable);
    if (!address) return { refuse: `${host} resolves to this host or a private address` };
    return { address };
  }
}

const REASON: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
};

function refuse(sock: Socket, status: number, message: string): void {
  if (!sock.writable) return;
  const body = `${message}\n`;
  sock.end(
    `HTTP/1.1 ${status} ${REASON[status] ?? "Error"}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
