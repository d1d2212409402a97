import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { hostAllowed, type Logger } from "@berth/core";
import dnsPacket, { type Answer, type Packet } from "dns-packet";

/** What the resolver needs to know about the sandbox a query came from. */
export interface DnsClient {
  id: string;
  egress: "none" | "allowlist" | "open";
  /** Allowlist hostnames: exact names and `*.suffix` wildcards (lowercase). */
  hosts: string[];
}

export interface DnsResolverOptions {
  /** Upstream resolver, `ip` or `ip:port`. */
  upstream: string;
  /** Finds the sandbox by its address; undefined: not a sandbox, refused. */
  clientFor(ip: string): DnsClient | undefined;
  /** Lets the sandbox reach the addresses of an allowed name (before the answer is sent). */
  allow(id: string, ips: string[], ttlSeconds: number): Promise<void>;
  log?: Logger;
}

const UPSTREAM_TIMEOUT_MS = 4_000;
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const MIN_TTL = 60;
const MAX_TTL = 3600;

/**
 * The sandboxes' DNS resolver (UDP). nftables redirects every DNS packet a sandbox sends here.
 * `open` sandboxes are answered from upstream as is; `allowlist` sandboxes only for listed
 * names, and the A records of the answer are added to the sandbox's allowed set before it gets
 * the answer (so what a name resolves to is what it may reach); everything else is NXDOMAIN or
 * REFUSED. AAAA answers are empty: sandboxes have IPv4 only.
 */
export class DnsResolver {
  private socket: Socket | undefined;
  private upstreamHost: string;
  private upstreamPort: number;

  constructor(private readonly o: DnsResolverOptions) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/.exec(o.upstream.trim());
    if (!m) throw new Error(`DNS upstream '${o.upstream}' must be an IPv4 address with an optional :port`);
    this.upstreamHost = m[1]!;
    this.upstreamPort = m[2] ? Number(m[2]) : 53;
  }

  /** Listens on `port` (0: any) on every address; resolves with the port. */
  async start(port: number): Promise<number> {
    const s = createSocket({ type: "udp4" });
    this.socket = s;
    s.on("message", (msg, rinfo) => {
      void this.answer(msg, rinfo).catch((err) =>
        this.o.log?.warn({ err: String(err) }, "dns: answer failed"),
      );
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(port, "0.0.0.0", () => {
        s.off("error", reject);
        resolve();
      });
    });
    return s.address().port;
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  private async answer(msg: Buffer, from: RemoteInfo): Promise<void> {
    let q: Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: ignore
    }
    const question = q.questions?.[0];
    const client = this.o.clientFor(from.address);
    const reply = (rcode: keyof typeof RCODE, answers: Answer[] = []) =>
      this.send(
        dnsPacket.encode({
          type: "response",
          id: q.id,
          // The rcode is the low 4 bits of the flags.
          flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
          questions: q.questions,
          answers,
        }),
        from,
      );
    if (!question || !client || client.egress === "none") return reply("REFUSED");
    if (client.egress === "allowlist" && !hostAllowed(question.name, client.hosts)) return reply("NXDOMAIN");
    if (question.type === "AAAA") return reply("NOERROR");
    const upstream = await this.ask(msg);
    if (!upstream) return reply("SERVFAIL");
    if (client.egress === "allowlist") {
      let decoded: Packet;
      try {
        decoded = dnsPacket.decode(upstream);
      } catch {
        return reply("SERVFAIL");
      }
      const a = (decoded.answers ?? []).filter(
        (x): x is Answer & { type: "A"; data: string } => x.type === "A",
      );
      if (a.length > 0) {
        const ttl = Math.min(MAX_TTL, Math.max(MIN_TTL, ...a.map((x) => x.ttl ?? MIN_TTL)));
        await this.o.allow(
          client.id,
          a.map((x) => x.data),
          ttl,
        );
      }
    }
    this.send(upstream, from);
  }

  /** Forwards the query as is; resolves with the raw answer, or undefined on timeout. */
  private ask(msg: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = createSocket("udp4");
      const done = (v: Buffer | undefined) => {
        clearTimeout(timer);
        s.close();
        resolve(v);
      };
      const timer = setTimeout(() => done(undefined), UPSTREAM_TIMEOUT_MS);
      s.on("message", (m) => done(m));
      s.on("error", () => done(undefined));
      s.send(msg, this.upstreamPort, this.upstreamHost);
    });
  }

  private send(buf: Buffer, to: RemoteInfo): void {
    this.socket?.send(buf, to.port, to.address);
  }
}
