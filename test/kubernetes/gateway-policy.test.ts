// The Kubernetes driver's model-gateway rule across server restarts, against the FAKE Kubernetes
// API server: a replica whose Pod IP changed re-points its own sandboxes' policies at its new
// address when it starts, and leaves other replicas' sandboxes alone.
import { KubernetesRuntime, type KubernetesRuntimeOptions } from "@berth/runtime-kubernetes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeCluster, startFakeCluster } from "../fixtures/fake-kubernetes/cluster.js";
import type { KObject } from "../fixtures/fake-kubernetes/server.js";

const NS = "berth-gw";
let cluster: FakeCluster;
beforeAll(async () => {
  cluster = await startFakeCluster();
});
afterAll(() => cluster?.close());

const runtimeOf = (gateway: KubernetesRuntimeOptions["gateway"]) =>
  new KubernetesRuntime({
    kubeConfig: cluster.api.kubeConfig(),
    namespace: NS,
    images: { default: "debian:12-slim" },
    initImage: "berth:test",
    defaultResources: { cpus: 0.5, memoryMiB: 128, diskMiB: 64, pids: 128 },
    podCidrs: ["10.0.0.0/8"],
    gateway,
  });
const policyOf = (id: string) => cluster.api.objects.networkpolicies.get(`${NS}/berth-${id}`) as KObject;
const gatewayRule = (id: string) => policyOf(id).spec.egress.at(-1);
const spec = (id: string, egress: "none" | "open") => ({
  id,
  template: "default",
  resources: { cpus: 0.5, memoryMiB: 128, diskMiB: 64, pids: 128 },
  network: { egress, allow: [] },
  env: {},
  volumes: [],
});

describe("kubernetes driver: the model gateway's rule", () => {
  it("re-points a replica's sandboxes at its new address on start, not another replica's", async () => {
    const a = runtimeOf({ address: "10.9.0.1", port: 7071, replica: "raaaaaaaaaaaa" });
    const b = runtimeOf({ address: "10.9.0.2", port: 7071, replica: "rbbbbbbbbbbbb" });
    await a.start();
    await b.start();
    expect(a.addressing.hostAddress("gwa")).toBe("10.9.0.1");
    expect(a.addressing.sandboxCidrs()).toEqual(["10.0.0.0/8"]);
    await a.create(spec("gwa", "open"));
    await b.create(spec("gwb", "none"));
    expect(gatewayRule("gwa").to[0].ipBlock.cidr).toBe("10.9.0.1/32");
    await a.close();

    // Replica A comes back on another Pod IP.
    const moved = runtimeOf({ address: "10.9.0.77", port: 7071, replica: "raaaaaaaaaaaa" });
    const writes = cluster.api.requests.length;
    await moved.start();
    expect(gatewayRule("gwa")).toEqual({
      to: [{ ipBlock: { cidr: "10.9.0.77/32" } }],
      ports: [{ protocol: "TCP", port: 7071 }],
    });
    // Its egress policy is kept as it was; B's sandbox still points at B.
    expect(policyOf("gwa").spec.egress[0].to[0].ipBlock.cidr).toBe("0.0.0.0/0");
    expect(gatewayRule("gwb").to[0].ipBlock.cidr).toBe("10.9.0.2/32");
    const puts = cluster.api.requests
      .slice(writes)
      .filter((r) => r.method === "PUT")
      .map((r) => r.path);
    expect(puts).toEqual([`/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/berth-gwa`]);

    // A second start with nothing moved writes nothing.
    const again = runtimeOf({ address: "10.9.0.77", port: 7071, replica: "raaaaaaaaaaaa" });
    const before = cluster.api.requests.length;
    await again.start();
    expect(cluster.api.requests.slice(before).filter((r) => r.method !== "GET")).toEqual([]);

    for (const [rt, id] of [
      [moved, "gwa"],
      [b, "gwb"],
    ] as const)
      await rt.destroy(id);
    expect([...cluster.leftovers("gwa"), ...cluster.leftovers("gwb")]).toEqual([]);
    for (const rt of [again, moved, b]) await rt.close();
  });

  it("gives sandboxes no gateway address, and the gateway no Pod ranges, when none is configured", async () => {
    const rt = runtimeOf(undefined);
    expect(rt.addressing.hostAddress("x")).toBeNull();
    expect(rt.addressing.sandboxCidrs()).toEqual([]);
    await rt.close();
  });
});
