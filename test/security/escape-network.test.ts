// Escape attempts through the allowlist egress machinery and what a sandbox can learn of the
// host: an allowlisted name that resolves to the host, DNS queries that smuggle extra questions
// or records, upstream answers that carry records of other names, a kept-alive connection that
// switches Host, a tenant's CIDR that opens everything, and host paths in mountinfo and /usr.
// Each case checks the refusal inside and, outside, that nothing was opened or reached.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { networkInterfaces } from "node:os";
import { FORBIDDEN_V4, inCidr } from "@berth/core";
import { initBinaryPath } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeDns, type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let a: OutsideServer;
let b: OutsideServer;
let c: OutsideServer;
let dns: FakeDns;
let hostService: Server;
let hostAddress: string;
let id: string;

const inside = async (script: string, sandbox = id) =>
  (await api(server, server.adminKey, "POST", `/v1/sandboxes/${sandbox}/exec`, { cmd: ["sh", "-c", script] }))
    .body as { exitCode: number; stdout: string; stderr: string };
const curl = async (url: string) => (await inside(`curl -s -m 3 ${url} || echo "FAIL $?"`)).stdout.trim();
const py = (lines: string[]) => `python3 -c '${lines.join("\n")}' 2>&1`;
/** The addresses the resolver has opened for the sandbox (its nftables set). */
const opened = () => {
  const tag = createHash("sha256").update(`${server.dataDir}/runtime/net`).digest("hex").slice(0, 4);
  return execFileSync("nft", ["list", "set", "inet", `berth_${tag}`, `dns_${id.replace(/-/g, "_")}`], {
    encoding: "utf8",
  });
};

beforeAll(async () => {
  [a, b, c] = await Promise.all([startOutsideServer("a"), startOutsideServer("b"), startOutsideServer("c")]);
  // One of this host's own addresses outside the forbidden ranges (this VM's eth0 here; else the
  // host end of a test veth, an address of the host all the same).
  hostAddress =
    Object.values(networkInterfaces())
      .flat()
      .find((i) => i?.family === "IPv4" && !i.internal && !FORBIDDEN_V4.some((r) => inCidr(i.address, r)))
      ?.address ?? a.hostIp;
  // A service that listens only on that address: what the host keeps from the outside world.
  hostService = createServer((_, res) => res.end("host-only"));
  await new Promise<void>((resolve, reject) => {
    hostService.once("error", reject);
    hostService.listen(80, hostAddress, resolve);
  });
  dns = await startFakeDns({
    "allowed.test": a.ip,
    "other.test": b.ip,
    "host.test": hostAddress,
    // A hostile upstream: records of names that were not asked for ride along.
    "multi.test": [
      { type: "A", name: "multi.test", ttl: 300, data: a.ip },
      { type: "A", name: "other.test", ttl: 300, data: b.ip },
    ],
    "alias.test": [
      { type: "CNAME", name: "alias.test", ttl: 300, data: "edge.cdn.test" },
      { type: "A", name: "edge.cdn.test", ttl: 300, data: c.ip },
      { type: "A", name: "stray.test", ttl: 300, data: b.ip },
    ],
  });
  server = await startTestServer({
    env: { BERTH_DNS_UPSTREAM: dns.address, BERTH_HIDDEN_HOST_PATHS: "/usr/share/doc,/usr/lib/os-release" },
  });
  const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
    network: { egress: "allowlist", allow: ["allowed.test", "host.test", "multi.test", "alias.test"] },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  id = r.body.id;
});

afterAll(async () => {
  await server?.stop();
  for (const o of [a, b, c]) o?.stop();
  dns?.stop();
  hostService?.close();
});

describe("escape suite: the allowlist's resolver and egress proxy", () => {
  it("an allowlisted name that resolves to the host is refused by the proxy and not opened by the resolver", async () => {
    // Controls: the host service answers from the host; the proxy serves a listed name.
    expect(await (await fetch(`http://${hostAddress}/`)).text()).toBe("host-only");
    expect(await curl("http://allowed.test/")).toBe("outside:a:allowed.test");
    // The resolver does not hand the address out; aimed anywhere on port 80, the proxy resolves it.
    const viaProxy = await curl(`--resolve host.test:80:${a.ip} http://host.test/`);
    expect(viaProxy).not.toContain("host-only");
    expect(viaProxy).toContain("resolves to this host or a forbidden address");
    expect((await inside("getent hosts host.test || echo NONE")).stdout.trim()).toBe("NONE");
    expect(opened()).not.toContain(hostAddress);
  });

  it("refuses a multi-question query and a query with additional records; forwards neither", async () => {
    const before = dns.queries.length;
    const r = await inside(
      py([
        "import socket,struct",
        'ns=[l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]',
        'name=lambda n: b"".join(bytes([len(p)])+p.encode() for p in n.split("."))+b"\\0"',
        'q=lambda n: name(n)+struct.pack(">HH",1,1)',
        'hdr=lambda qd,ar: struct.pack(">HHHHHH",0x1234,0x0100,qd,0,0,ar)',
        "def ask(p):",
        "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);s.sendto(p,(ns,53))",
        "  try: d=s.recv(2048)",
        '  except socket.timeout: return "timeout"',
        '  f,qd,an=struct.unpack(">HHH",d[2:8]);return "rcode=%d answers=%d"%(f&15,an)',
        'print("multi",ask(hdr(2,0)+q("allowed.test")+q("other.test")))',
        'rr=name("other.test")+struct.pack(">HHIH",1,1,300,4)+socket.inet_aton("1.2.3.4")',
        'print("extra",ask(hdr(1,1)+q("allowed.test")+rr))',
        'print("plain",ask(hdr(1,0)+q("allowed.test")))',
      ]),
    );
    // FORMERR, nothing answered; the plain query (the control) is answered.
    expect(r.stdout).toBe("multi rcode=1 answers=0\nextra rcode=1 answers=0\nplain rcode=0 answers=1\n");
    const sent = dns.queries.slice(before);
    expect(sent.map((q) => q.questions?.map((x) => x.name))).toEqual([["allowed.test"]]);
    expect(sent.flatMap((q) => q.additionals ?? [])).toEqual([]);
    expect(opened()).not.toContain(b.ip);
  });

  it("an answer carrying records of another name opens only the asked name's (and its CNAME chain's) addresses", async () => {
    expect((await inside("getent hosts multi.test")).stdout).toContain(a.ip);
    expect((await inside("getent hosts alias.test")).stdout).toContain(c.ip);
    // Control: the CNAME chain's address is reachable.
    expect(await curl(`http://${c.ip}:8080`)).toBe(`outside:c:${c.ip}:8080`);
    expect(await curl(`http://${b.ip}:8080`)).toMatch(/^FAIL/);
    const set = opened();
    expect(set).toContain(a.ip);
    expect(set).toContain(c.ip);
    expect(set).not.toContain(b.ip);
  });

  it("refuses a second request with another Host on a kept-alive connection", async () => {
    const r = await inside(
      py([
        "import socket",
        's=socket.create_connection(("allowed.test",80),timeout=5)',
        'req=lambda h: s.sendall(("GET / HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n"%h).encode())',
        'req("allowed.test");buf=b""',
        'while b"\\r\\n\\r\\n" not in buf: buf+=s.recv(4096)',
        'head,body=buf.split(b"\\r\\n\\r\\n",1)',
        'n=int([l.split(b":")[1] for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0])',
        "while len(body)<n: body+=s.recv(4096)",
        'print("first",body.decode())',
        'req("other.test");out=b""',
        "try:",
        "  while True:",
        "    d=s.recv(4096)",
        "    if not d: break",
        "    out+=d",
        'except socket.timeout: out+=b" (still open)"',
        'print("second",out.decode(errors="replace"))',
      ]),
    );
    expect(r.stdout).toContain("first outside:a:allowed.test\n");
    expect(r.stdout).not.toContain("outside:a:other.test");
    expect(r.stdout).toMatch(/second HTTP\/1\.1 403 Forbidden[\s\S]*may not ask for 'other\.test'/);
  });
});

describe("escape suite: what a tenant may open", () => {
  it("a tenant's /0 (or any too-wide or forbidden range) is 400 naming the field and the setting; an admin may list a private range", async () => {
    const k = await api(server, server.adminKey, "POST", "/v1/keys", { tenant: `t-net-${Date.now()}` });
    expect(k.status).toBe(201);
    const create = (key: string, allow: string[]) =>
      api(server, key, "POST", "/v1/sandboxes", { network: { egress: "allowlist", allow } });
    const wide = await create(k.body.key, ["1.2.3.4/0"]);
    expect(wide.status).toBe(400);
    expect(wide.body.error.details.field).toBe("network.allow");
    expect(wide.body.error.message).toContain("BERTH_EGRESS_MIN_PREFIX");
    const metadata = await create(k.body.key, ["169.254.169.254/32"]);
    expect(metadata.status).toBe(400);
    expect(metadata.body.error.message).toContain("only an admin key");
    // Through a PATCH and a session's sandbox body too.
    const own = await create(k.body.key, ["allowed.test"]);
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    const patched = await api(server, k.body.key, "PATCH", `/v1/sandboxes/${own.body.id}`, {
      network: { allow: ["0.0.0.0/1"] },
    });
    expect(patched.status).toBe(400);
    const session = await api(server, k.body.key, "POST", "/v1/sessions", {
      prompt: "hi",
      sandbox: { network: { egress: "allowlist", allow: ["10.0.0.0/8"] } },
    });
    expect(session.status).toBe(400);
    expect(session.body.error.details.field).toBe("network.allow");
    const admin = await create(server.adminKey, ["10.1.2.0/24"]);
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    for (const s of [own.body.id, admin.body.id])
      await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${s}`);
  });
});

describe("escape suite: host paths", () => {
  it("mountinfo shows no host data-dir or install path; /usr/local/etc and listed paths are hidden", async () => {
    // Control: the host has something there to hide.
    expect(readdirSync("/usr/local/etc").length).toBeGreaterThan(0);
    const r = await inside(
      "cat /proc/self/mountinfo; echo ---; ls -A /usr/local/etc | wc -l; ls -A /usr/share/doc | wc -l; wc -c < /usr/lib/os-release",
    );
    const [mountinfo = "", counts = ""] = r.stdout.split("---\n");
    expect(mountinfo).toContain(" /.berth/init ");
    expect(mountinfo).toContain(" /etc/resolv.conf ");
    for (const hostPath of [server.dataDir, "/tmp/berth-e2e-", initBinaryPath(), "/work/"])
      expect(mountinfo, hostPath).not.toContain(hostPath);
    expect(counts.trim().split("\n")).toEqual(["0", "0", "0"]);
  });
});
