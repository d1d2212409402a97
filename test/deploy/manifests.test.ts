// The Kubernetes manifests (deploy/kubernetes) and the objects the Kubernetes driver sends,
// validated against the Kubernetes API schemas of `kubernetes-models` (no cluster runs here).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SETTINGS } from "@berth/core";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { claim, egressPolicy, sandboxPod } from "../../packages/runtime-kubernetes/src/objects.js";

const DIR = new URL("../../deploy/kubernetes/", import.meta.url).pathname;
type Doc = Record<string, any>;
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/Pod": Pod,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/StatefulSet": StatefulSet,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));
const manifests = files.filter((f) => f !== "kustomization.yaml");
const docs: Doc[] = manifests.flatMap((f) =>
  parseAllDocuments(readFileSync(join(DIR, f), "utf8")).map((d) => {
    if (d.errors.length) throw new Error(`${f}: ${d.errors[0]?.message}`);
    return d.toJS() as Doc;
  }),
);
const find = (kind: string, name: string) =>
  docs.find((d) => d.kind === kind && d.metadata?.name === name) as Doc;

function validate(d: Doc): void {
  const Model = MODELS[`${d.apiVersion}/${d.kind}`];
  if (!Model) throw new Error(`no schema known for ${d.apiVersion} ${d.kind}: add it to the test`);
  new Model(d).validate();
}

describe("Kubernetes manifests", () => {
  it("are each valid against the Kubernetes schemas (an unknown kind fails)", () => {
    expect(docs.length).toBeGreaterThanOrEqual(10);
    for (const d of docs) expect(() => validate(d), `${d.kind} ${d.metadata?.name}`).not.toThrow();
  });

  it("fail validation when broken (the check is real)", () => {
    const broken = structuredClone(find("StatefulSet", "berth"));
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    expect(() => validate(broken)).toThrow();
    expect(() => validate({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } })).toThrow(
      /no schema/,
    );
  });

  it("are all listed in kustomization.yaml, and it lists nothing else", () => {
    const k = parseAllDocuments(readFileSync(join(DIR, "kustomization.yaml"), "utf8"))[0]?.toJS() as Doc;
    expect(k.kind).toBe("Kustomization");
    expect([...k.resources].sort()).toEqual([...manifests].sort());
  });

  it("grant the driver exactly its calls, in the sandbox namespace only", () => {
    expect(docs.some((d) => d.kind === "ClusterRole" || d.kind === "ClusterRoleBinding")).toBe(false);
    const role = find("Role", "berth-sandboxes");
    expect(role.metadata.namespace).toBe("berth-sandboxes");
    const grants = role.rules.flatMap((r: Doc) =>
      r.resources.flatMap((res: string) =>
        r.verbs.map((v: string) => `${r.apiGroups[0] || "core"}/${res}:${v}`),
      ),
    );
    const crud = ["get", "list", "create", "update", "delete"];
    expect(grants.sort()).toEqual(
      [
        ...crud.map((v) => `core/pods:${v}`),
        ...crud.map((v) => `core/persistentvolumeclaims:${v}`),
        ...crud.map((v) => `networking.k8s.io/networkpolicies:${v}`),
        "core/pods/portforward:get",
        "core/pods/portforward:create",
      ].sort(),
    );
    const binding = find("RoleBinding", "berth-sandboxes");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "berth", namespace: "berth" }]);
  });

  it("run Berth on the Kubernetes driver with PostgreSQL, setting only real settings", () => {
    const sts = find("StatefulSet", "berth");
    const c = sts.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: Doc) => [e.name, e.value]));
    const known = new Set([
      ...Object.values(SETTINGS).map((s) => s.env),
      "POD_NAME",
      "POD_NAMESPACE",
      "POD_IP",
      "POSTGRES_PASSWORD",
    ]);
    for (const name of Object.keys(env)) expect(known.has(name), `${name} is not a Berth setting`).toBe(true);
    expect(env.BERTH_RUNTIME).toBe("kubernetes");
    expect(env.BERTH_DATABASE_URL).toMatch(/^postgres:\/\/berth:\$\(POSTGRES_PASSWORD\)@postgres\./);
    expect(env.BERTH_K8S_NAMESPACE).toBe(find("Role", "berth-sandboxes").metadata.namespace);
    // Agent sessions: sandbox Pods reach this replica's gateway at its Pod IP, on a port it exposes.
    expect(env.BERTH_K8S_GATEWAY_ADDRESS).toBe("$(POD_IP)");
    const podIp = c.env.find((e: Doc) => e.name === "POD_IP");
    expect(podIp.valueFrom.fieldRef.fieldPath).toBe("status.podIP");
    expect(c.ports.map((p: Doc) => p.containerPort)).toEqual(
      expect.arrayContaining([Number(env.BERTH_GATEWAY_PORT), SETTINGS.k8sEgressProxyPort.default]),
    );
    // Dependent variables must come after what they name, or Kubernetes leaves them unexpanded.
    const order = c.env.map((e: Doc) => e.name);
    expect(order.indexOf("POD_IP")).toBeLessThan(order.indexOf("BERTH_K8S_GATEWAY_ADDRESS"));
    expect(sts.spec.template.spec.serviceAccountName).toBe("berth");
    expect(sts.spec.serviceName).toBe(find("Service", "berth-replicas").metadata.name);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
  });
});

describe("objects the Kubernetes driver sends", () => {
  it("are valid against the same schemas", () => {
    const resources = { cpus: 0.5, memoryMiB: 256, diskMiB: 1024, pids: 128 };
    const pod = sandboxPod({
      name: "berth-abc",
      sandbox: "abc",
      template: "default",
      image: "debian:12-slim",
      initImage: "berth:0.1.0",
      resources,
      env: { A: "1" },
      dataClaim: "berth-abc-data",
      volumes: [{ claim: "berth-vol-v1", mountPath: "/data" }],
      runtimeClass: "gvisor",
      copyClaude: true,
    });
    validate(pod as Doc);
    validate(claim({ name: "berth-abc-data", sizeMiB: 1024, labels: {} }) as Doc);
    for (const egress of ["none", "open"] as const)
      validate(egressPolicy("abc", { egress, allow: [] }) as Doc);
    validate(egressPolicy("abc", { egress: "allowlist", allow: ["1.2.3.0/24"] }) as Doc);
    const gateway = { address: "10.4.0.7", port: 7071, replica: "r0123456789ab", proxyPort: 7072 };
    validate(
      egressPolicy("abc", { egress: "allowlist", allow: ["pypi.org", "10.0.0.0/24"] }, gateway) as Doc,
    );
    for (const egress of ["none", "open"] as const)
      validate(egressPolicy("abc", { egress, allow: [] }, gateway) as Doc);
  });
});
