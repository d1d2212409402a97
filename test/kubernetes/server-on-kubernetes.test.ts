// A real Berth server with BERTH_RUNTIME=kubernetes, driven through its HTTP API, against the
// FAKE Kubernetes API server of test/fixtures/fake-kubernetes (no real cluster can run here).
// Checks what the driver asks of the API (objects, their order, their security settings) as the
// fake recorded it, and what a user sees (exec, files, hibernate, 501s, clean deletes).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installClaudeBinary } from "../../packages/server/src/agents/claude-binary.js";
import { type FakeCluster, startFakeCluster } from "../fixtures/fake-kubernetes/cluster.js";
import type { KObject } from "../fixtures/fake-kubernetes/server.js";
import { bashThenText, type FakeModel, startFakeModel } from "../fixtures/fake-model/server.js";
import { type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { freePort } from "../support/ports.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { waitFor } from "../support/wait.js";

const NS = "berth-sandboxes";
let cluster: FakeCluster;
let server: TestServer;
let model: FakeModel;
let dir: string;
let gatewayPort: number;
let proxyPort: number;
let outside: OutsideServer;
let dns: { address: string; stop(): void };

const kubeconfig = (url: string, token: string) => `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]
users: [{name: berth, user: {token: "${token}"}}]
contexts: [{name: fake, context: {cluster: fake, user: berth}}]
current-context: fake
`;

beforeAll(async () => {
  // The FAKE model server, for the agent session case.
  model = await startFakeModel(bashThenText("echo from-agent > /workspace/agent.txt; id -u", "written"));
  // The gateway's port is fixed ahead: the fake's Pods (local sandboxes) are let through to it.
  gatewayPort = await freePort("0.0.0.0");
  proxyPort = await freePort("0.0.0.0");
  // "The internet" for the egress proxy: a web server out of the host's netns, and names for it.
  outside = await startOutsideServer("web");
  dns = await startFakeDns({
    "allowed.test": outside.ip,
    "other.test": outside.ip,
    "inside.test": "10.1.2.3",
  });
  cluster = await startFakeCluster({ hostPorts: [gatewayPort, proxyPort] });
  if (!cluster.hostAddress) throw new Error("this host has no IPv4 address for the fake's Pods to reach");
  dir = mkdtempSync("/tmp/berth-kcfg-");
  writeFileSync(join(dir, "config"), kubeconfig(cluster.api.url, cluster.api.token));
  process.env.KUBECONFIG = join(dir, "config");
  server = await startTestServer({
    env: {
      BERTH_RUNTIME: "kubernetes",
      BERTH_K8S_NAMESPACE: NS,
      BERTH_K8S_IMAGES: "default=debian:12-slim,broken=example.invalid/nothing:missing",
      BERTH_K8S_INIT_IMAGE: "berth:test",
      BERTH_K8S_WARM_PODS: "1",
      BERTH_DEFAULT_MEMORY_MIB: "256",
      BERTH_GATEWAY_PORT: String(gatewayPort),
      BERTH_K8S_EGRESS_PROXY_PORT: String(proxyPort),
      BERTH_DNS_UPSTREAM: dns.address,
      BERTH_K8S_GATEWAY_ADDRESS: cluster.hostAddress,
      // The fake's Pods see this host's /usr (a real Pod gets `claude` from the init image).
      BERTH_K8S_CLAUDE_PATH: installClaudeBinary(loadConfig({}).agentDir),
      BERTH_ANTHROPIC_API_KEY: "sk-ant-k8s-test",
      BERTH_ANTHROPIC_BASE_URL: model.url,
    },
  });
});

afterAll(async () => {
  // What cannot hang goes first: a stuck server close must not leave the netns behind too.
  outside?.stop();
  dns?.stop();
  delete process.env.KUBECONFIG;
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
  await cluster?.close();
  await model?.close();
});

const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
/** Creates a sandbox; a failed create fails the test with the server's answer. */
const create = async (body: unknown) => {
  const r = await call("POST", "/v1/sandboxes", body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
const exec = async (id: string, script: string) =>
  (await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] })).body;
const objectsOf = (id: string) =>
  (["pods", "persistentvolumeclaims", "networkpolicies"] as const).flatMap((k) =>
    [...cluster.api.objects[k].values()]
      .filter((o) => o.metadata.labels?.["berth.dev/sandbox"] === id)
      .map((o) => `${k}/${o.metadata.name}`),
  );
const pool = () => cluster.api.list("pods", NS).filter((p) => p.metadata.labels?.["berth.dev/warm-pool"]);

async function until(what: string, ok: () => boolean): Promise<void> {
  await waitFor(what, ok, Boolean, { timeoutMs: 10_000 });
}

describe("berth serve with BERTH_RUNTIME=kubernetes (fake API server)", () => {
  it("reports the driver, and authenticates every API call with the kubeconfig's token", async () => {
    const h = await fetch(`${server.url}/healthz`).then((r) => r.json());
    expect(h.runtime).toBe("kubernetes");
    expect(cluster.api.requests.length).toBeGreaterThan(0);
    expect(
      cluster.api.requests.every(
        (r) =>
          r.path.startsWith(`/api/v1/namespaces/${NS}/`) ||
          r.path.startsWith(`/apis/networking.k8s.io/v1/namespaces/${NS}/`),
      ),
    ).toBe(true);
  });

  it("makes a sandbox a locked-down Pod behind its NetworkPolicy, and runs commands in it", async () => {
    const before = cluster.api.requests.length;
    const r = await call("POST", "/v1/sandboxes", {
      resources: { cpus: 0.5, memoryMiB: 128 },
      env: { GREETING: "hi" },
    });
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    expect(await exec(id, 'echo "$GREETING from $(hostname) as $(id -u)"')).toMatchObject({
      exitCode: 0,
      stdout: `hi from ${id} as 1000\n`,
    });

    const posts = cluster.api.requests
      .slice(before)
      .filter((q) => q.method === "POST")
      .map((q) => q.path.split("/").at(-1));
    expect(posts.indexOf("networkpolicies")).toBeLessThan(posts.indexOf("pods"));
    const pod = cluster.api.objects.pods.get(`${NS}/berth-${id}`) as KObject;
    expect(pod.spec).toMatchObject({
      hostname: id,
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
    });
    const c = pod.spec.containers[0];
    expect(c.image).toBe("debian:12-slim");
    expect(c.securityContext).toMatchObject({
      runAsUser: 1000,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.resources.limits).toMatchObject({ cpu: "500m", memory: "128Mi" });
    expect(pod.spec.initContainers[0].image).toBe("berth:test");
    const policy = cluster.api.objects.networkpolicies.get(`${NS}/berth-${id}`) as KObject;
    // Egress `none`: nothing but this server's model gateway (its address and port only).
    expect(policy.spec).toMatchObject({
      podSelector: { matchLabels: { "berth.dev/sandbox": id } },
      ingress: [],
      egress: [
        {
          to: [{ ipBlock: { cidr: `${cluster.hostAddress}/32` } }],
          ports: [
            { protocol: "TCP", port: gatewayPort },
            { protocol: "TCP", port: proxyPort },
          ],
        },
      ],
    });

    // Files go through the same port-forward.
    const put = await api(
      server,
      server.adminKey,
      "PUT",
      `/v1/sandboxes/${id}/files/content?path=/workspace/a.txt`,
      "via k8s",
    );
    expect(put.status).toBe(200);
    expect(await exec(id, "cat /workspace/a.txt")).toMatchObject({ stdout: "via k8s" });
  });

  it("changes egress live by replacing the NetworkPolicy", async () => {
    const id = await create({ resources: { cpus: 0.5 } });
    expect((await call("PATCH", `/v1/sandboxes/${id}`, { network: { egress: "open" } })).status).toBe(200);
    const policy = cluster.api.objects.networkpolicies.get(`${NS}/berth-${id}`) as KObject;
    expect(policy.spec.egress[0].to[0].ipBlock).toMatchObject({ cidr: "0.0.0.0/0" });
    expect(policy.spec.egress[0].to[0].ipBlock.except).toContain("10.0.0.0/8");
    expect((await exec(id, "cat /etc/resolv.conf")).stdout).toMatch(/nameserver/);
  });

  it("filters web traffic by hostname through the egress proxy: listed names pass, others and private answers do not", async () => {
    const r = await call("POST", "/v1/sandboxes", {
      resources: { cpus: 0.5 },
      network: { egress: "allowlist", allow: ["allowed.test"] },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.id as string;
    // The NetworkPolicy holds no hostname: only the gateway and proxy rule (names are the proxy's).
    const policy = cluster.api.objects.networkpolicies.get(`${NS}/berth-${id}`) as KObject;
    expect(policy.spec.egress).toHaveLength(1);
    const curl = (args: string) => exec(id, `curl -s -S -m 5 ${args} 2>&1; echo " exit=$?"`);
    // Processes get the proxy in their environment; a listed name answers over HTTP and TLS.
    expect((await curl("http://allowed.test:8080/")).stdout).toMatch(
      /^outside:web:allowed\.test:8080 exit=0/,
    );
    expect((await curl("-k https://allowed.test/")).stdout).toMatch(/^outside:web:allowed\.test exit=0/);
    // An unlisted name on the same address, and a listed-looking trick, are refused by name.
    expect((await curl("http://other.test:8080/")).stdout).not.toContain("outside:");
    expect((await curl("-k https://other.test/")).stdout).toMatch(/403|exit=56/);
    expect((await curl("-x '' --noproxy '*' http://allowed.test:8080/")).stdout).not.toContain("outside:");
    // Bypassing the proxy reaches nothing: the address is not in the policy.
    expect((await curl(`--noproxy '*' http://${outside.ip}:8080/`)).stdout).not.toContain("outside:");
    // Live change: the name is allowed at once, and a name answering a private address is not.
    expect(
      (
        await call("PATCH", `/v1/sandboxes/${id}`, {
          network: { egress: "allowlist", allow: ["other.test", "inside.test"] },
        })
      ).status,
    ).toBe(200);
    expect((await curl("http://other.test:8080/")).stdout).toMatch(/^outside:web:other\.test:8080 exit=0/);
    expect((await curl("http://allowed.test:8080/")).stdout).not.toContain("outside:");
    expect((await curl("-k https://inside.test/")).stdout).toMatch(/403|exit=56/);
    // Egress none: the proxy refuses everything for it too.
    await call("PATCH", `/v1/sandboxes/${id}`, { network: { egress: "none" } });
    expect((await curl("http://other.test:8080/")).stdout).not.toContain("outside:");
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
  });

  it("hibernates by deleting the Pod (the claim stays) and wakes on the same claim", async () => {
    const id = await create({ resources: { cpus: 0.5 } });
    await exec(id, "echo kept > /workspace/k");
    expect((await call("POST", `/v1/sandboxes/${id}/hibernate`)).status).toBe(200);
    expect(cluster.api.objects.pods.has(`${NS}/berth-${id}`)).toBe(false);
    expect(cluster.api.objects.persistentvolumeclaims.has(`${NS}/berth-${id}-data`)).toBe(true);
    expect((await call("POST", `/v1/sandboxes/${id}/wake`)).status).toBe(200);
    expect(await exec(id, "cat /workspace/k")).toMatchObject({ stdout: "kept\n" });
  });

  it("answers 501 not_supported for pause and template imports, with what to do instead", async () => {
    const id = await create({ resources: { cpus: 0.5 } });
    const p = await call("POST", `/v1/sandboxes/${id}/pause`);
    expect(p.status).toBe(501);
    expect(p.body.error.message).toMatch(/hibernate/);
    const t = await call("GET", "/v1/templates");
    expect(t.body.items.map((x: { name: string; source: string }) => `${x.name} ${x.source}`)).toContain(
      "default image debian:12-slim",
    );
    const put = await api(server, server.adminKey, "PUT", "/v1/templates/mine?format=rootfs", "not a tar", {
      "content-type": "application/octet-stream",
    });
    expect(put.status).toBe(501);
    expect(put.body.error.message).toMatch(/BERTH_K8S_IMAGES/);
  });

  it("runs an agent session in a Pod: claude inside, the model reached through this server's gateway", async () => {
    const sb = await call("POST", "/v1/sandboxes", { resources: { cpus: 1 } });
    expect(sb.status, JSON.stringify(sb.body)).toBe(201);
    const id = sb.body.id as string;
    const created = await call("POST", "/v1/sessions", {
      prompt: "write the file",
      pattern: "long-running",
      sandbox: { id },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const s = await sessionIn((p) => call("GET", p), created.body.id, ["idle", "failed", "completed"]);
    expect(s.state, JSON.stringify(s)).toBe("idle");
    expect(s.result.subtype).toBe("success");
    expect(s.usage.inputTokens).toBeGreaterThan(0);
    // The tool call ran in the Pod, as its user; the model saw a session token, never the key.
    expect(await exec(id, "cat /workspace/agent.txt")).toMatchObject({ stdout: "from-agent\n" });
    const asked = model.requests.filter((r) => r.path.startsWith("/v1/messages"));
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(asked.every((r) => r.headers["x-api-key"] === "sk-ant-k8s-test")).toBe(true);
    const env = await exec(
      id,
      "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^ANTHROPIC_API_KEY=berth-gw-' || true",
    );
    expect(Number(env.stdout.trim())).toBeGreaterThan(0);
    expect(
      (await exec(id, "grep -rl sk-ant-k8s-test /proc/[0-9]*/environ 2>/dev/null | wc -l")).stdout.trim(),
    ).toBe("0");
    expect((await call("DELETE", `/v1/sessions/${created.body.id}`)).status).toBeLessThan(300);
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(objectsOf(id)).toEqual([]);
  });

  it("hibernates a sandbox whose idle action is pause (a Pod cannot be frozen)", async () => {
    const r = await call("POST", "/v1/sandboxes", {
      resources: { cpus: 0.5 },
      idle: { afterSeconds: 1, action: "pause" },
    });
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    const state = await waitFor(
      `sandbox ${id} to be hibernated`,
      async () => (await call("GET", `/v1/sandboxes/${id}`)).body.state as string,
      (s) => s === "hibernated",
      { timeoutMs: 10_000 },
    ).catch(() => "not hibernated");
    if (state !== "hibernated") {
      // What the server and the fake cluster were doing, to tell a stuck reaper from a slow one.
      console.error(
        server.logLines
          .filter((l) => !l.includes('"level":30'))
          .slice(-30)
          .join(""),
      );
      console.error(
        cluster.api.requests
          .slice(-20)
          .map((q) => `${q.method} ${q.path}`)
          .join("\n"),
      );
    }
    expect(state).toBe("hibernated");
    expect(cluster.api.objects.pods.has(`${NS}/berth-${id}`)).toBe(false);
  });

  it("goes on reaping the other sandboxes while one sandbox's API calls hang", async () => {
    const stuck = await create({ resources: { cpus: 0.5 } });
    cluster.api.stalled.add(`berth-${stuck}`);
    try {
      const r = await call("POST", "/v1/sandboxes", { resources: { cpus: 0.5 }, timeoutSeconds: 1 });
      expect(r.status).toBe(201);
      // The stuck sandbox's health checks hang (until the API timeout, 30 s); the other's timeout
      // must still be acted on in a few passes.
      await waitFor(
        `sandbox ${r.body.id} to be deleted`,
        async () => (await call("GET", `/v1/sandboxes/${r.body.id}`)).body.state as string,
        (s) => s === "deleted",
        { timeoutMs: 10_000 },
      );
      await until("the timed-out sandbox's objects to go", () => objectsOf(r.body.id).length === 0);
      // The stuck sandbox was really waited on: the reaper says so once a health pass reaches it
      // (passes list sandboxes in id order, so the other may be reaped before that pass comes).
      await waitFor(
        "the reaper to go on without the stuck sandbox",
        () => server.logLines.some((l) => l.includes(stuck) && l.includes("pass goes on without it")),
        Boolean,
        { timeoutMs: 25_000 },
      );
    } finally {
      cluster.api.release();
    }
    expect((await call("DELETE", `/v1/sandboxes/${stuck}`)).status).toBe(204);
  });

  it("fails a create whose image cannot be pulled at once, naming why, and leaves nothing behind", async () => {
    const r = await call("POST", "/v1/sandboxes", { template: "broken", resources: { cpus: 0.5 } });
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.body.error.message).toMatch(/ErrImagePull/);
    const leftovers = [...cluster.api.objects.pods.values()].filter((p) =>
      p.spec.containers[0].image.endsWith(":missing"),
    );
    expect(leftovers).toEqual([]);
  });

  it("takes a warm Pod for a default sandbox and starts another behind it", async () => {
    await until("a running warm pod", () => pool().some((p) => p.status?.phase === "Running"));
    const warm = pool()[0]?.metadata.name as string;
    const r = await call("POST", "/v1/sandboxes", {});
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    const pod = cluster.api.objects.pods.get(`${NS}/${warm}`) as KObject;
    expect(pod.metadata.labels["berth.dev/sandbox"]).toBe(id);
    expect(pod.metadata.labels["berth.dev/warm-pool"]).toBeUndefined();
    expect((await exec(id, "echo warm")).stdout).toBe("warm\n");
    await until("the pool refilled", () => pool().length === 1);
    // Its claim follows it: deleting the sandbox removes the Pod, the claim and the policy.
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(objectsOf(id)).toEqual([]);
  });

  it("deletes every object of a sandbox (idempotently)", async () => {
    const id = await create({ resources: { cpus: 0.5 } });
    expect(objectsOf(id).length).toBe(3);
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(objectsOf(id)).toEqual([]);
    expect(cluster.leftovers(id)).toEqual([]);
  });
});
