// The Kubernetes driver against the conformance suite, talking to the FAKE Kubernetes API server
// of test/fixtures/fake-kubernetes (no real cluster can run here), whose pods are local sandboxes.
// Declared gaps: pause and a per-pod pids limit (Kubernetes has neither: real gaps of the driver);
// cgroup counters (the fake's pods have no /sys/fs/cgroup; a real pod has).
import { KubernetesRuntime } from "@berth/runtime-kubernetes";
import { startFakeCluster } from "../fixtures/fake-kubernetes/cluster.js";
import { describeRuntimeConformance } from "./runtime-conformance.js";

describeRuntimeConformance("kubernetes (fake API server)", async () => {
  const cluster = await startFakeCluster();
  const runtime = new KubernetesRuntime({
    kubeConfig: cluster.api.kubeConfig(),
    namespace: "berth-sandboxes",
    images: { default: "debian:12-slim" },
    initImage: "berth:test",
    defaultResources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
  });
  await runtime.start();
  return {
    runtime,
    gaps: ["pause", "pids", "cgroup-stats"],
    leftovers: (id) => cluster.leftovers(id),
    async close() {
      await runtime.close();
      await cluster.close();
    },
  };
});
