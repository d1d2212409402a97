import { randomInt } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { egressAddressAllowed, HostAddresses, hostAllowed, type Logger } from "@berth/core";
import dnsPacket, { type Answer, type Packet } from "dns-packet";
import {
  answers,
  checkQuery,
  type Rcode,
  recordsForQuestion,
  response,
  upstreamQuery,
  type ValidQuery,
} from "./dns-messages.js";

/** What the resolver needs to know about the sandbox a query came from. */
export interface DnsClient {
  id: string;
  egress: "none" | "allowlist" | "open";
  /** Allowlist hostnames: exact names and `*.suffix` wildcards (lowercase). */
  hosts: string[];
  /** Allowlist CIDRs: names may resolve into these even where they are forbidden otherwise. */
  cidrs: string[];
}

export interface DnsResolverOptions {
  /** Upstream resolver, `ip` or `ip:port`. */
  upstream: string;
  /** Finds the sandbox by its address; undefined: not a sandbox, refused. */
  clientFor(ip: string): DnsClient | undefined;
  /** Lets the sandbox reach the addresses of an allowed name (before the answer is sent). */
  allow(id: string, ips: string[], ttlSeconds: number): Promise<void>;
  /** Ranges answers never open besides core's FORBIDDEN_V4 (the sandboxes' own range). */
  forbidden?: string[];
  /** The host's own addresses (never opened); default: read from this host's interfaces. */
  hostAddresses?: HostAddresses;
  log?: Logger;
}

const UPSTREAM_TIMEOUT_MS = 4_000;
const MIN_TTL = 60;
const MAX_TTL = 3600;

/**
 * The sandboxes' DNS resolver (UDP). nftables redirects every DNS packet a sandbox sends here.
 * Every query is checked first (one question, class IN, a data type, no other records but EDNS)
 * and forwarded as a query of the resolver's own making, so nothing else a sandbox puts in a
 * packet reaches the upstream. `open` sandboxes get the upstream's answer; `allowlist` sandboxes
 * are answered only for listed names, and only with the records of the asked name and its CNAME
 * chain; their A records, unless they are the host's or forbidden, are added to the sandbox's
 * allowed set before it gets the answer (so what a name resolves to is what it may reach).
 * Everything else is NXDOMAIN or REFUSED. AAAA answers are empty: sandboxes have IPv4 only.
 */
export class DnsResolver {
  private socket: Socket | undefined;
  private upstreamHost: string;
  private upstreamPort: number;
  private readonly host: HostAddresses;

  constructor(private readonly o: DnsResolverOptions) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/.exec(o.upstream.trim());
    if (!m) throw new Error(`DNS upstream '${o.upstream}' must be an IPv4 address with an optional :port`);
    this.upstreamHost = m[1]!;
    this.upstreamPort = m[2] ? Number(m[2]) : 53;
    this.host = o.hostAddresses ?? new HostAddresses();
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
    const client = this.o.clientFor(from.address);
    // Not one of the sandboxes (or no longer): no answer at all, not even a refusal.
    if (!client) return;
    const q = checkQuery(msg);
    if (!("question" in q)) {
      if (q.id !== null) this.send(response({ id: q.id }, q.rcode), from);
      this.o.log?.info({ sandboxId: client.id, why: q.why }, "dns: query refused");
      return;
    }
    const reply = (rcode: Rcode, records: Answer[] = []) => this.send(response(q, rcode, records), from);
    if (client.egress === "none") return reply("REFUSED");
    if (client.egress === "allowlist" && !hostAllowed(q.question.name, client.hosts))
      return reply("NXDOMAIN");
    if (q.question.type === "AAAA") return reply("NOERROR");
    const upstream = await this.ask(q);
    if (!upstream) return reply("SERVFAIL");
    if (client.egress === "open") {
      // Passed on as the upstream answered it, under the sandbox's own query id.
      upstream.raw.writeUInt16BE(q.id, 0);
      return this.send(upstream.raw, from);
    }
    const rcode = upstream.packet.flags !== undefined ? upstream.packet.flags & 0xf : 2;
    if (rcode !== 0) return reply(rcode === 3 ? "NXDOMAIN" : "SERVFAIL");
    const records = recordsForQuestion(q.question, upstream.packet.answers ?? []).filter(
      (r) =>
        r.type !== "A" ||
        egressAddressAllowed(r.data, {
          host: this.host,
          cidrs: client.cidrs,
          extraForbidden: this.o.forbidden,
        }),
    );
    const a = records.filter((r): r is Answer & { type: "A"; data: string } => r.type === "A");
    if (a.length > 0) {
      const ttl = Math.min(MAX_TTL, Math.max(MIN_TTL, ...a.map((x) => x.ttl ?? MIN_TTL)));
      await this.o.allow(
        client.id,
        a.map((x) => x.data),
        ttl,
      );
    }
    reply("NOERROR", records);
  }

  /**
   * Asks the upstream the query's one question under a fresh id; resolves with the answer that
   * matches it (id and question; anything else arriving on the socket is ignored), or undefined
   * on timeout.
   */
  private ask(q: ValidQuery): Promise<{ raw: Buffer; packet: Packet } | undefined> {
    const id = randomInt(0, 65536);
    const query = upstreamQuery(id, q);
    return new Promise((resolve) => {
      const s = createSocket("udp4");
      const done = (v: { raw: Buffer; packet: Packet } | undefined) => {
        clearTimeout(timer);
        s.close();
        resolve(v);
      };
      const timer = setTimeout(() => done(undefined), UPSTREAM_TIMEOUT_MS);
      s.on("message", (m, from) => {
        if (from.address !== this.upstreamHost || from.port !== this.upstreamPort) return;
        let packet: Packet;
        try {
          packet = dnsPacket.decode(m);
        } catch {
          return;
        }
        if (answers(packet, id, q.question)) done({ raw: m, packet });
      });
      s.on("error", () => done(undefined));
      s.send(query, this.upstreamPort, this.upstreamHost);
    });
  }

  private send(buf: Buffer, to: RemoteInfo): void {
    this.socket?.send(buf, to.port, to.address);
  }
}
