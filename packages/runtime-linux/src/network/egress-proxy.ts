import { promises as dns } from "node:dns";
import { connect, createServer, type Server, type Socket } from "node:net";
import { hostAllowed, inCidr, type Logger } from "@berth/core";
import { readHttpHost, readSni } from "./client-hello.js";
import type { DnsClient } from "./dns-resolver.js";

/** Largest request head / ClientHello read before deciding. */
const MAX_HEAD = 16 * 1024;
const HEAD_TIMEOUT_MS = 10_000;

export interface EgressProxyOptions {
  /** The sandbox behind a source address (allowlist sandboxes only get here). */
  clientFor(ip: string): (DnsClient & { cidrs: string[] }) | undefined;
  /** Destinations a name may never resolve to (unless a CIDR of the sandbox allows it). */
  forbidden: string[];
  /** Upstream resolver, `ip[:port]`. */
  upstream: string;
  log?: Logger;
}

/**
 * The HTTP(S) side of `allowlist` egress. nftables sends a sandbox's connections to ports 80
 * and 443 here (unless the address is one of its allowlisted CIDRs). The proxy reads the Host
 * header or the TLS SNI, refuses names the sandbox may not reach, resolves the name itself and
 * connects to that address; TLS is passed through untouched. So a listed address shared with
 * unlisted names (a CDN) does not open those names, and a listed name in Host/SNI cannot be
 * steered to another address.
 */
export class EgressProxy {
  private readonly servers: Server[] = [];
  private readonly resolver = new dns.Resolver({ timeout: 4_000, tries: 2 });

  constructor(private readonly o: EgressProxyOptions) {
    this.resolver.setServers([o.upstream]);
  }

  /** Listens for redirected HTTP and TLS connections; resolves with their ports. */
  async start(): Promise<{ http: number; tls: number }> {
    const listen = async (kind: "http" | "tls") => {
      const server = createServer((s) => this.handle(s, kind));
      this.servers.push(server);
      await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
      return (server.address() as { port: number }).port;
    };
    return { http: await listen("http"), tls: await listen("tls") };
  }

  close(): void {
    for (const s of this.servers.splice(0)) s.close();
  }

  private handle(s: Socket, kind: "http" | "tls"): void {
    s.on("error", () => {});
    const client = this.o.clientFor((s.remoteAddress ?? "").replace(/^::ffff:/, ""));
    if (client?.egress !== "allowlist") return void s.destroy();
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), HEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const name = kind === "tls" ? readSni(head) : readHttpHost(head);
      if (name === undefined && head.length < MAX_HEAD) return;
      s.off("data", onData);
      s.pause();
      clearTimeout(timer);
      void this.forward(s, kind, client, name ?? null, head);
    };
    s.on("data", onData);
  }

  private async forward(
    s: Socket,
    kind: "http" | "tls",
    client: DnsClient & { cidrs: string[] },
    name: string | null,
    head: Buffer,
  ): Promise<void> {
    const refuse = (why: string) => {
      this.o.log?.info({ sandboxId: client.id, name, why }, "egress proxy refused");
      if (kind === "http")
        s.end(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nberth: ${why}\n`,
        );
      else s.destroy();
    };
    if (!name) return refuse("the request names no host");
    if (!hostAllowed(name, client.hosts))
      return refuse(`egress to '${name}' is not in this sandbox's allowlist`);
    let ips: string[];
    try {
      ips = await this.resolver.resolve4(name);
    } catch {
      return refuse(`'${name}' does not resolve`);
    }
    const ok = ips.filter(
      (ip) => client.cidrs.some((c) => inCidr(ip, c)) || !this.o.forbidden.some((c) => inCidr(ip, c)),
    );
    if (ok.length === 0) return refuse(`'${name}' resolves to a forbidden address`);
    const up = connect({ host: ok[0], port: kind === "tls" ? 443 : 80 });
    up.setNoDelay(true);
    up.on("error", () => s.destroy());
    up.once("connect", () => {
      up.write(head);
      s.pipe(up);
      up.pipe(s);
      s.resume();
    });
    s.on("close", () => up.destroy());
  }
}
