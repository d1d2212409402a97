import { createServer, type Server, connect as tcp } from "node:net";
import { HostAddresses, inCidr, type NetworkPolicy } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PodEgressProxy } from "./egress-proxy.js";

// The proxy on loopback, with a stand-in for the Pod lookup (the runtime's is tested through the
// fake API server in test/kubernetes). Its client is 127.0.0.1, which this table maps to a policy.
// It stands for a proxy in a Pod, whose host addresses are not loopback (10.99.0.1 here); the
// last case runs one with this machine's real addresses.
let policy: NetworkPolicy | null = null;
let proxy: PodEgressProxy;
let origin: Server;
let proxyPort: number;
let originPort: number;

/** Sends raw bytes to the proxy and reads until it closes. */
function raw(text: string | Buffer, port = proxyPort): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tcp(port, "127.0.0.1", () => s.end(text));
    let out = "";
    s.on("data", (d) => {
      out += d;
    });
    s.on("close", () => resolve(out));
    s.on("error", reject);
  });
}

beforeAll(async () => {
  origin = createServer((s) =>
    s.end("HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\norigin"),
  );
  await new Promise<void>((r) => origin.listen(0, "127.0.0.1", () => r()));
  originPort = (origin.address() as { port: number }).port;
  proxy = new PodEgressProxy({
    policyOf: async (ip) => (ip === "127.0.0.1" ? policy : null),
    hostAddresses: new HostAddresses(() => ["10.99.0.1"]),
  });
  proxyPort = await proxy.start(0);
});
afterAll(() => {
  proxy?.close();
  origin?.close();
});

describe("the Kubernetes egress proxy", () => {
  it("passes a listed address through and refuses private ones an open policy does not list", async () => {
    policy = { egress: "allowlist", allow: ["127.0.0.1/32"] };
    const ok = await raw(
      `GET http://127.0.0.1:${originPort}/x HTTP/1.1\r\nhost: 127.0.0.1\r\nproxy-authorization: y\r\n\r\n`,
    );
    expect(ok).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*origin$/);
    policy = { egress: "open", allow: [] };
    expect(await raw(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 403 [\s\S]*not allowed/,
    );
    policy = { egress: "none", allow: [] };
    expect(await raw(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(/403[\s\S]*egress is none/);
  });

  it("answers hostile requests with a 4xx and closes: garbage, huge heads, non-http URLs, strangers", async () => {
    policy = { egress: "open", allow: [] };
    expect(await raw("\x00\x01 not http\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(`GET /${"a".repeat(20_000)}`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await raw("GET ftp://example.com/ HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw("CONNECT [::1]:443 HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    policy = null;
    expect(await raw("CONNECT example.com:443 HTTP/1.1\r\n\r\n")).toMatch(
      /403[\s\S]*only this server's sandboxes/,
    );
  });

  it("never connects to an address of its own host, even one a sandbox's CIDRs list", async () => {
    const onHost = new PodEgressProxy({ policyOf: async (ip) => (ip === "127.0.0.1" ? policy : null) });
    const port = await onHost.start(0);
    try {
      policy = { egress: "allowlist", allow: ["127.0.0.1/32", "10.99.0.1/32"] };
      expect(
        await raw(`GET http://127.0.0.1:${originPort}/x HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`, port),
      ).toMatch(/^HTTP\/1\.1 403 [\s\S]*not allowed/);
      expect(await raw("CONNECT 10.99.0.1:443 HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 403 /);
    } finally {
      onHost.close();
    }
  });

  it("matches IPv4 ranges", () => {
    expect(inCidr("10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(inCidr("11.1.2.3", "10.0.0.0/8")).toBe(false);
    expect(inCidr("1.2.3.4", "1.2.3.4")).toBe(true);
    expect(inCidr("1.2.3.4", "0.0.0.0/0")).toBe(true);
    expect(inCidr("::1", "0.0.0.0/0")).toBe(false);
  });
});
