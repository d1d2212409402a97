// Sandbox networks on real namespaces, veths and nftables. The "outside" servers live in network
// namespaces these tests create; no traffic leaves the machine.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let a: OutsideServer;
let b: OutsideServer;
let c: OutsideServer;
let metadata: OutsideServer;
let dns: { address: string; stop(): void };
let hostService: Server;
let hostPort: number;

const create = async (network: unknown) => {
  const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", { network });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
const sh = async (id: string, script: string) =>
  (await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] }))
    .body as {
    stdout: string;
    exitCode: number;
  };
/** curl from inside the sandbox: the body, or `FAIL <curl exit code>`. */
const curl = async (id: string, url: string, extra = "") =>
  (await sh(id, `curl -s -m 2 ${extra} ${url} || echo "FAIL $?"`)).stdout.trim();
const resolves = async (id: string, name: string) =>
  (await sh(id, `getent hosts ${name} || echo NONE`)).stdout.trim();
const netOf = (id: string) =>
  JSON.parse(readFileSync(`${server.dataDir}/runtime/sandboxes/${id}/net.json`, "utf8")) as {
    veth: string;
    netns: string;
    hostIp: string;
    sandboxIp: string;
  };

beforeAll(async () => {
  const started = await Promise.allSettled([
    startOutsideServer("a"),
    startOutsideServer("b"),
    startOutsideServer("c"),
    startOutsideServer("meta", "169.254.169.254"),
  ]);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    // The ones that did start go now: afterAll knows only what was assigned.
    for (const s of started) if (s.status === "fulfilled") s.value.stop();
    throw failed.reason;
  }
  [a, b, c, metadata] = started.map((s) => (s as PromiseFulfilledResult<OutsideServer>).value) as [
    OutsideServer,
    OutsideServer,
    OutsideServer,
    OutsideServer,
  ];
  dns = await startFakeDns({
    "allowed.test": a.ip,
    "x.wild.test": a.ip,
    "other.test": b.ip,
    "rebind.test": "169.254.169.254",
  });
  hostService = createServer((s) => s.end("host-service"));
  await new Promise<void>((r) => hostService.listen(0, "0.0.0.0", r));
  hostPort = (hostService.address() as { port: number }).port;
  server = await startTestServer({ env: { BERTH_DNS_UPSTREAM: dns.address } });
});

afterAll(async () => {
  await server?.stop();
  for (const o of [a, b, c, metadata]) o?.stop();
  dns?.stop();
  hostService?.close();
});

describe("egress none", () => {
  it("answers on loopback only: no outside address, no DNS", async () => {
    const id = await create({ egress: "none" });
    expect(await curl(id, `http://${a.ip}:8080`)).toMatch(/^FAIL/);
    expect(await resolves(id, "allowed.test")).toBe("NONE");
    const local = await sh(
      id,
      // Waits for the server to listen (up to 20 s, checked every 0.1 s), not a fixed time.
      "python3 -m http.server 9000 --bind 127.0.0.1 >/dev/null 2>&1 & i=0; until curl -s -m 1 -o /dev/null http://127.0.0.1:9000/ || [ $i -ge 200 ]; do i=$((i+1)); sleep 0.1; done; curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:9000/; kill %1",
    );
    expect(local.stdout).toBe("200");
  });
});

describe("egress open", () => {
  it("reaches outside servers by address and by name, through Berth's resolver", async () => {
    const id = await create({ egress: "open" });
    expect(await curl(id, `http://${a.ip}:8080`)).toBe(`outside:a:${a.ip}:8080`);
    expect(await curl(id, "http://allowed.test:8080")).toBe("outside:a:allowed.test:8080");
    expect((await sh(id, "cat /etc/resolv.conf")).stdout).toMatch(/^nameserver 10\./);
  });

  it("cannot reach the metadata address, the host's services, or another sandbox", async () => {
    const id = await create({ egress: "open" });
    const other = await create({ egress: "open" });
    // Controls: each of these answers when asked from where it is allowed.
    expect(execFileSync("curl", ["-s", "-m", "2", "http://169.254.169.254:8080"], { encoding: "utf8" })).toBe(
      "outside:meta:169.254.169.254:8080",
    );
    const { hostIp } = netOf(id);
    const otherIp = netOf(other).sandboxIp;
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${other}/processes`, {
      cmd: ["python3", "-m", "http.server", "8000"],
    });
    const self = await sh(
      other,
      `for i in $(seq 50); do curl -s -m 1 -o /dev/null -w '%{http_code}' http://${otherIp}:8000/ && break; sleep 0.1; done`,
    );
    expect(self.stdout).toMatch(/200$/);

    expect(await curl(id, "http://169.254.169.254:8080")).toMatch(/^FAIL/);
    expect(await curl(id, `http://${hostIp}:${hostPort}`)).toMatch(/^FAIL/);
    expect(await curl(id, `http://${hostIp}:${new URL(server.url).port}/healthz`)).toMatch(/^FAIL/);
    expect(await curl(id, `http://${otherIp}:8000/`)).toMatch(/^FAIL/);
  });
});

describe("egress allowlist", () => {
  it("lets through listed names, wildcards and CIDRs only; not IP literals, rebinding or forged Host/SNI", async () => {
    const id = await create({
      egress: "allowlist",
      allow: ["allowed.test", "*.wild.test", "rebind.test", `${c.ip}/32`],
    });
    expect(await curl(id, "http://allowed.test:8080")).toBe("outside:a:allowed.test:8080");
    expect(await curl(id, "http://x.wild.test:8080")).toBe("outside:a:x.wild.test:8080");
    expect(await curl(id, `http://${c.ip}:8080`)).toBe(`outside:c:${c.ip}:8080`);
    // An unlisted name does not even resolve; its address is not reachable as a literal.
    expect(await resolves(id, "other.test")).toBe("NONE");
    expect(await curl(id, `http://${b.ip}:8080`)).toMatch(/^FAIL/);
    // A listed name that resolves to a forbidden address (DNS rebinding) resolves to nothing, and goes nowhere.
    expect(await resolves(id, "rebind.test")).toBe("NONE");
    expect(await curl(id, "http://rebind.test:8080")).toMatch(/^FAIL/);
    // A listed name sent to an unlisted address (as Host, or as the name curl puts in SNI).
    expect(await curl(id, `http://${b.ip}:8080`, "-H 'Host: allowed.test'")).toMatch(/^FAIL/);
    expect(await curl(id, "http://allowed.test:8080", `--resolve allowed.test:8080:${b.ip}`)).toMatch(
      /^FAIL/,
    );
  });

  it("checks the Host header and TLS SNI of web traffic, so a shared address opens no other name", async () => {
    // other.test is served from a's address too (a CDN): the address is allowed, the name is not.
    const id = await create({ egress: "allowlist", allow: ["allowed.test"] });
    expect(await curl(id, "http://allowed.test/")).toBe("outside:a:allowed.test");
    expect(await curl(id, "https://allowed.test/", "-k")).toBe("outside:a:allowed.test");
    const byHost = await curl(id, "http://allowed.test/", "-H 'Host: other.test'");
    expect(byHost).toContain("berth: egress to 'other.test' is not in this sandbox's allowlist");
    expect(await curl(id, "https://other.test/", `-k --resolve other.test:443:${a.ip}`)).toMatch(/^FAIL/);
    // The proxy connects to what the listed name resolves to, not where the sandbox aimed.
    expect(await curl(id, "http://allowed.test/", `--resolve allowed.test:80:${b.ip}`)).toBe(
      "outside:a:allowed.test",
    );
  });

  it("rejects entries that are neither names nor IPv4 CIDRs", async () => {
    const r = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
      network: { egress: "allowlist", allow: ["not a host!"] },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe("network.allow");
  });
});

describe("policy changes and teardown", () => {
  it("applies a PATCHed policy to the running sandbox at once", async () => {
    const id = await create({ egress: "open" });
    expect(await curl(id, `http://${a.ip}:8080`)).toBe(`outside:a:${a.ip}:8080`);
    const none = await api(server, server.adminKey, "PATCH", `/v1/sandboxes/${id}`, {
      network: { egress: "none" },
    });
    expect(none.body.network).toEqual({ egress: "none", allow: [] });
    expect(await curl(id, `http://${a.ip}:8080`)).toMatch(/^FAIL/);
    await api(server, server.adminKey, "PATCH", `/v1/sandboxes/${id}`, {
      network: { egress: "allowlist", allow: [a.ip] },
    });
    expect(await curl(id, `http://${a.ip}:8080`)).toBe(`outside:a:${a.ip}:8080`);
    expect(await curl(id, `http://${b.ip}:8080`)).toMatch(/^FAIL/);
  });

  it("keeps every sandbox's policy, resolver and proxy across a server restart", async () => {
    const open = await create({ egress: "open" });
    const listed = await create({ egress: "allowlist", allow: ["allowed.test"] });
    await server.restart();
    expect(await curl(open, `http://${b.ip}:8080`)).toBe(`outside:b:${b.ip}:8080`);
    expect(await curl(listed, "http://allowed.test/")).toBe("outside:a:allowed.test");
    expect(await curl(listed, `http://${b.ip}:8080`)).toMatch(/^FAIL/);
  });

  it("leaves no veth, namespace or nftables rule behind after delete", async () => {
    const id = await create({ egress: "allowlist", allow: ["allowed.test"] });
    const net = netOf(id);
    const rules = () => execFileSync("nft", ["list", "ruleset"], { encoding: "utf8" });
    expect(rules()).toContain(net.veth);
    expect((await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(execFileSync("ip", ["-br", "link"], { encoding: "utf8" })).not.toContain(net.veth);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(net.netns);
    expect(rules()).not.toContain(net.veth);
    expect(rules()).not.toContain(id.replace(/-/g, "_"));
  });
});
