// An API server that takes requests and never answers (overloaded, a half-dead node in front of
// it): every call of the driver must fail by its deadline, naming the call, and not hang.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";

let server: http.Server;
const held: Socket[] = [];
let cluster: Cluster;

/** A kubeconfig for an API server on loopback `port` (plain HTTP, token auth). */
function kubeConfig(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

beforeAll(async () => {
  server = http.createServer(() => {
    // Never answers.
  });
  server.on("connection", (s) => held.push(s));
  server.on("upgrade", () => {
    // Never upgrades either.
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  cluster = new Cluster(
    kubeConfig((server.address() as AddressInfo).port),
    "ns",
    pino({ level: "silent" }),
    300,
  );
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise((r) => server.close(r));
});

describe("Kubernetes API calls against a server that never answers", () => {
  it("fail after the API timeout, naming the call", async () => {
    for (const [what, call] of [
      ["read pod", () => cluster.readPod("p")],
      ["list persistentvolumeclaims", () => cluster.listClaims("a=b")],
      ["delete pod", () => cluster.deletePod("p")],
    ] as const) {
      const t0 = Date.now();
      const err = await call().then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(
        new RegExp(`kubernetes API not reachable: ${what}: .*(timeout|abort)`, "i"),
      );
      // It waited for its deadline (300 ms here), and gave up on it, not on some outer timeout.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
  });

  it("fail to open a port-forward the server never upgrades", async () => {
    const t0 = Date.now();
    await expect(cluster.portForward("p", 49990)).rejects.toThrow(/port-forward to pod p: .*timed out/i);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});

describe("Kubernetes API calls when nothing listens", () => {
  it("fail at once, port-forward included, without an unhandled error", async () => {
    const gone = http.createServer();
    gone.listen(0, "127.0.0.1");
    await new Promise((r) => gone.once("listening", r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    const c = new Cluster(kubeConfig(port), "ns", pino({ level: "silent" }), 5_000);
    await expect(c.readPod("p")).rejects.toThrow(/kubernetes API not reachable: read pod/);
    await expect(c.portForward("p", 49990)).rejects.toThrow(/port-forward to pod p: .*ECONNREFUSED/);
  });
});
