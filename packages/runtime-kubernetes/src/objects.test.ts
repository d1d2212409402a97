import { describe, expect, it } from "vitest";
import { parseImageMap } from "./index.js";
import { egressPolicy, sandboxPod } from "./objects.js";

const POD = {
  name: "berth-x",
  sandbox: "x",
  template: "default",
  image: "debian:12-slim",
  initImage: "berth:1",
  resources: { cpus: 1.5, memoryMiB: 300, diskMiB: 100, pids: 64 },
  env: { A: "b" },
  dataClaim: "berth-x-data",
  volumes: [{ claim: "berth-vol-v", mountPath: "/data" }],
  runtimeClass: "gvisor",
};

describe("kubernetes objects", () => {
  it("turns egress policies into NetworkPolicies that deny all ingress", () => {
    expect(egressPolicy("a", { egress: "none", allow: [] }).spec).toMatchObject({ ingress: [], egress: [] });
    const open = egressPolicy("a", { egress: "open", allow: [] }).spec?.egress ?? [];
    expect(open[0]?.to?.[0]?.ipBlock?.except).toEqual(
      expect.arrayContaining(["10.0.0.0/8", "169.254.0.0/16"]),
    );
    expect(open[1]?.ports?.map((p) => `${p.protocol}/${p.port}`)).toEqual(["UDP/53", "TCP/53"]);
    const cidrs = egressPolicy("a", { egress: "allowlist", allow: ["1.2.3.4", "10.1.0.0/16"] }).spec?.egress;
    expect(cidrs?.[0]?.to?.map((t) => t.ipBlock?.cidr)).toEqual(["1.2.3.4/32", "10.1.0.0/16"]);
    expect(() => egressPolicy("a", { egress: "allowlist", allow: ["pypi.org"] })).toThrow(
      /CIDRs only: pypi\.org/,
    );
  });

  it("builds a Pod that runs berth-init as uid 1000 with its limits, and a warm Pod without a sandbox label", () => {
    const o = POD;
    const pod = sandboxPod(o);
    const c = pod.spec?.containers[0];
    expect(c?.resources?.limits).toEqual({ cpu: "1500m", memory: "300Mi", "ephemeral-storage": "100Mi" });
    expect(c?.env).toContainEqual({ name: "BERTH_LISTEN_PORT", value: "49990" });
    expect(c?.volumeMounts?.map((m) => m.mountPath)).toEqual([
      "/.berth",
      "/run/berth",
      "/home/user",
      "/workspace",
      "/data",
    ]);
    expect(pod.spec?.runtimeClassName).toBe("gvisor");
    expect(pod.metadata?.labels?.["berth.dev/sandbox"]).toBe("x");
    const warm = sandboxPod({ ...o, sandbox: null, pool: "k1" });
    expect(warm.metadata?.labels).not.toHaveProperty("berth.dev/sandbox");
    expect(warm.spec?.hostname).toBeUndefined();
  });

  it("lets every egress mode reach the model gateway's one address and port, and keeps the policy on the object", () => {
    const g = { address: "10.4.0.7", port: 7071, replica: "r0123456789ab" };
    const rule = { to: [{ ipBlock: { cidr: "10.4.0.7/32" } }], ports: [{ protocol: "TCP", port: 7071 }] };
    for (const policy of [
      { egress: "none", allow: [] },
      { egress: "open", allow: [] },
      { egress: "allowlist", allow: ["1.2.3.4"] },
    ] as const) {
      const np = egressPolicy("a", policy, g);
      expect(np.spec?.egress?.at(-1)).toEqual(rule);
      expect(np.metadata?.labels?.["berth.dev/replica"]).toBe("r0123456789ab");
      expect(np.metadata?.annotations).toEqual({
        "berth.dev/network": JSON.stringify(policy),
        "berth.dev/gateway": "10.4.0.7:7071",
      });
    }
    // With the egress proxy, hostnames are its to check: the policy keeps the CIDRs and opens the proxy's port.
    const proxied = egressPolicy(
      "a",
      { egress: "allowlist", allow: ["pypi.org", "1.2.3.4"] },
      { ...g, proxyPort: 7072 },
    );
    expect(proxied.spec?.egress?.[0]?.to?.map((t) => t.ipBlock?.cidr)).toEqual(["1.2.3.4/32"]);
    expect(proxied.spec?.egress?.at(-1)?.ports?.map((p) => p.port)).toEqual([7071, 7072]);
    expect(proxied.metadata?.annotations?.["berth.dev/gateway"]).toBe("10.4.0.7:7071,7072");
    expect(() => egressPolicy("a", { egress: "allowlist", allow: ["pypi.org"] }, g)).toThrow(/egress proxy/);
    expect(egressPolicy("a", { egress: "none", allow: [] }).metadata?.labels).not.toHaveProperty(
      "berth.dev/replica",
    );
  });

  it("copies claude in from the init image only when asked, with room for it", () => {
    const o = { ...POD, volumes: [], runtimeClass: undefined };
    const plain = sandboxPod(o).spec;
    expect(plain?.initContainers?.map((c) => c.command)).toEqual([
      ["cp", "/opt/berth/berth-init", "/.berth/init"],
    ]);
    const agent = sandboxPod({ ...o, copyClaude: true }).spec;
    expect(agent?.initContainers?.map((c) => c.command)).toEqual([
      ["cp", "/opt/berth/berth-init", "/.berth/init"],
      ["cp", "/opt/berth/claude", "/.berth/claude"],
    ]);
    expect(agent?.initContainers?.[1]?.securityContext).toMatchObject({
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(agent?.volumes?.find((v) => v.name === "berth")?.emptyDir?.sizeLimit).toBe("512Mi");
    expect(plain?.volumes?.find((v) => v.name === "berth")?.emptyDir?.sizeLimit).toBe("16Mi");
  });

  it("parses image maps, refusing what is malformed", () => {
    expect(parseImageMap("default=debian:12-slim, py=python:3.12")).toEqual({
      default: "debian:12-slim",
      py: "python:3.12",
    });
    expect(() => parseImageMap("py=python:3.12")).toThrow(/default/);
    expect(() => parseImageMap("default")).toThrow(/not name=image/);
    expect(() => parseImageMap("default=a b")).toThrow(/not name=image/);
  });
});
