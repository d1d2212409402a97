/**
 * "The internet" for network tests, without leaving the machine: HTTP servers in network
 * namespaces of their own, joined to the host by a veth, and a DNS server the sandboxes'
 * resolver forwards to. Everything is removed by `stop()`.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";

export interface OutsideServer {
  /** The server's address (port 8080). */
  ip: string;
  /** The host's end of the veth to it: an address of this host. */
  hostIp: string;
  stop(): void;
}

const SERVER = `
const http = require("http"), https = require("https");
const answer = (req, res) => res.end("outside:" + process.argv[1] + ":" + (req.headers.host || ""));
http.createServer(answer).listen(8080, "0.0.0.0");
http.createServer(answer).listen(80, "0.0.0.0");
https.createServer({ key: process.env.TLS_KEY, cert: process.env.TLS_CERT }, answer).listen(443, "0.0.0.0");
`;

let tls: { key: string; cert: string } | undefined;

/** A self-signed certificate for `*.test` (PEM text), made once per test process; no file stays. */
function testCertificate(): { key: string; cert: string } {
  if (tls) return tls;
  const dir = mkdtempSync(join(tmpdir(), "berth-tls-"));
  try {
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=berth-test",
        "-addext",
        "subjectAltName=DNS:*.test,DNS:*.wild.test",
      ],
      { stdio: "ignore" },
    );
    tls = { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
    return tls;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * HTTP servers on `ip:8080` and `ip:80` and HTTPS on `ip:443` (default: a random 198.18.x.2, the benchmarking range) in its own
 * netns, answering `outside:<name>:<Host header>`. The host routes to it through a veth.
 */
export async function startOutsideServer(name: string, ip?: string): Promise<OutsideServer> {
  const tag = randomBytes(3).toString("hex");
  const ns = `bt${tag}`;
  const hostIf = `bth${tag}`;
  const third = Math.floor(Math.random() * 250);
  const hostIp = `198.18.${third}.1`;
  const addr = ip ?? `198.18.${third}.2`;
  const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { stdio: "pipe" });
  sh(`ip netns add ${ns}`);
  sh(`ip link add ${hostIf} type veth peer name eth0 netns ${ns}`);
  sh(`ip addr add ${hostIp}/30 dev ${hostIf} && ip link set ${hostIf} up`);
  sh(
    `ip -n ${ns} addr add ${addr}/32 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up`,
  );
  sh(`ip -n ${ns} route add ${hostIp} dev eth0 && ip -n ${ns} route add default via ${hostIp}`);
  sh(`ip route add ${addr}/32 dev ${hostIf}`);
  const { key, cert } = testCertificate();
  const proc = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", SERVER, name], {
    stdio: "ignore",
    env: { ...process.env, TLS_KEY: key, TLS_CERT: cert },
  });
  for (let i = 0; i < 200; i++) {
    try {
      sh(`ip netns exec ${ns} bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    ip: addr,
    hostIp,
    stop() {
      proc.kill("SIGKILL");
      try {
        sh(`ip route del ${addr}/32 2>/dev/null; ip link del ${hostIf} 2>/dev/null; ip netns del ${ns}`);
      } catch {
        // already gone
      }
    },
  };
}

/** A fake upstream DNS server and the queries it received. */
export interface FakeDns {
  address: string;
  /** Every query it got, decoded. */
  queries: dnsPacket.Packet[];
  stop(): void;
}

/**
 * A DNS server on 127.0.0.1 answering A queries from `records`: a name maps to an IPv4 address,
 * or to the answer section a hostile upstream sends for it (records of any name). NXDOMAIN for
 * names it does not know.
 */
export async function startFakeDns(records: Record<string, string | dnsPacket.Answer[]>): Promise<FakeDns> {
  const s = createSocket("udp4");
  const queries: dnsPacket.Packet[] = [];
  s.on("message", (msg, from) => {
    const q = dnsPacket.decode(msg);
    queries.push(q);
    const question = q.questions?.[0];
    const known = question ? records[question.name.toLowerCase()] : undefined;
    const answers: dnsPacket.Answer[] =
      question?.type !== "A" || known === undefined
        ? []
        : typeof known === "string"
          ? [{ type: "A", name: question.name, ttl: 300, data: known }]
          : known;
    const answer = dnsPacket.encode({
      type: "response",
      id: q.id,
      // rcode 3: NXDOMAIN for names it does not know
      flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3),
      questions: q.questions,
      answers,
    });
    s.send(answer, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  return { address: `127.0.0.1:${s.address().port}`, queries, stop: () => s.close() };
}
