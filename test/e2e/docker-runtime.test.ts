// The server on the Docker driver (BERTH_RUNTIME=docker): a sandbox made and used through the
// HTTP API is a locked-down container, and deleting it removes the container.
import { execFileSync } from "node:child_process";
import { DockerRuntime } from "@berth/runtime-docker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bashThenText, type FakeModel, startFakeModel } from "../fixtures/fake-model/server.js";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";
import { type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { waitFor } from "../support/wait.js";

const docker = await startTestDocker();
if ("reason" in docker) console.log(`docker e2e skipped: ${docker.reason}`);

describe.skipIf("reason" in docker)("server on the docker runtime", () => {
  const engine = docker as TestDocker;
  let server: TestServer;
  let model: FakeModel;
  let outside: OutsideServer;
  let dns: { address: string; stop(): void };
  const engineGet = <T>(path: string): T =>
    JSON.parse(
      execFileSync("curl", ["-sf", "--unix-socket", engine.socketPath, `http://d${path}`], {
        encoding: "utf8",
      }),
    ) as T;
  const containersOf = (id: string) =>
    engineGet<{ Id: string }[]>(
      `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`berth.sandbox=${id}`] }))}`,
    );

  beforeAll(async () => {
    // The FAKE model server: the only stand-in, for the agent session case.
    model = await startFakeModel(bashThenText("echo from-agent > /workspace/agent.txt; id -u", "written"));
    outside = await startOutsideServer("a");
    dns = await startFakeDns({ "allowed.test": outside.ip, "other.test": outside.ip });
    server = await startTestServer({
      env: {
        BERTH_DNS_UPSTREAM: dns.address,
        BERTH_RUNTIME: "docker",
        BERTH_DOCKER_SOCKET: engine.socketPath,
        BERTH_ANTHROPIC_API_KEY: "sk-ant-docker-test",
        BERTH_ANTHROPIC_BASE_URL: model.url,
      },
    });
  });

  afterAll(async () => {
    if (server) {
      // The server's own purge knows the local driver; the Docker driver cleans its part first.
      const cleaner = new DockerRuntime({ dataDir: server.dataDir, socketPath: engine.socketPath });
      for (const id of await cleaner.list().catch(() => [])) await cleaner.destroy(id).catch(() => {});
      await cleaner.purgeHostState().catch(() => {});
      await server.stop();
    }
    await engine.stop();
    await model?.close();
    outside?.stop();
    dns?.stop();
  });

  it("enforces an allowlist given through the API, and a PATCH of it, on the container", async () => {
    const created = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
      network: { egress: "allowlist", allow: ["allowed.test"] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id: string = created.body.id;
    const curl = async (url: string) =>
      (
        await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, {
          cmd: ["sh", "-c", `curl -s -m 3 ${url} || echo "FAIL $?"`],
        })
      ).body.stdout.trim();
    expect(await curl("http://allowed.test/")).toBe("outside:a:allowed.test");
    // other.test is the same address: only the name decides (the proxy reads the Host header).
    expect(await curl("http://other.test/")).toMatch(/^FAIL/);
    const patched = await api(server, server.adminKey, "PATCH", `/v1/sandboxes/${id}`, {
      network: { egress: "allowlist", allow: ["other.test"] },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(await curl("http://other.test/")).toBe("outside:a:other.test");
    expect(await curl("http://allowed.test/")).toMatch(/^FAIL/);
    expect((await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
  });

  it("creates a sandbox, runs a command in it as uid 1000 without privileges, and deletes its container", async () => {
    const health = await fetch(`${server.url}/healthz`).then((r) => r.json());
    expect(JSON.stringify(health)).toContain("docker");
    const created = await api(server, server.adminKey, "POST", "/v1/sandboxes", {
      env: { GREETING: "hello" },
      resources: { cpus: 0.5, memoryMiB: 256, pids: 64 },
    });
    expect(created.status).toBe(201);
    expect(created.body.state).toBe("running");
    const id: string = created.body.id;
    const r = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, {
      cmd: [
        "sh",
        "-c",
        'id -u; hostname; pwd; echo "$GREETING"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.exitCode).toBe(0);
    expect(r.body.stdout.split("\n").slice(0, 4)).toEqual(["1000", id, "/workspace", "hello"]);
    expect(r.body.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.body.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.body.stdout).toMatch(/Seccomp:\s+2/);

    const [c] = containersOf(id);
    expect(c).toBeDefined();
    const info = engineGet<{ HostConfig: Record<string, unknown> }>(`/containers/${c?.Id}/json`);
    expect(info.HostConfig).toMatchObject({
      NanoCpus: 500_000_000,
      Memory: 256 * 1024 * 1024,
      PidsLimit: 64,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      NetworkMode: "none",
    });

    const del = await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${id}`);
    expect(del.status).toBeLessThan(300);
    await waitFor(
      `the containers of ${id} to be gone`,
      () => containersOf(id),
      (cs) => cs.length === 0,
    );
  });

  it("hibernates (container stopped, kept) and wakes with its files, and keeps serving it after a server restart", async () => {
    const call = (method: string, path: string, body?: unknown) =>
      api(server, server.adminKey, method, path, body);
    const created = await call("POST", "/v1/sandboxes", { env: { KEEP: "me" } });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const sh = (script: string) => call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] });
    expect((await sh("echo precious > /workspace/file")).body.exitCode).toBe(0);
    const h = await call("POST", `/v1/sandboxes/${id}/hibernate`);
    expect(h.body.state).toBe("hibernated");
    const [c] = containersOf(id);
    expect(engineGet<{ State: { Status: string } }>(`/containers/${c?.Id}/json`).State.Status).toBe("exited");
    const w = await call("POST", `/v1/sandboxes/${id}/wake`);
    expect(w.body.state).toBe("running");
    expect((await sh('cat /workspace/file; echo "$KEEP"')).body.stdout).toBe("precious\nme\n");
    await server.restart();
    expect((await call("GET", `/v1/sandboxes/${id}`)).body.state).toBe("running");
    expect((await sh("cat /workspace/file")).body.stdout).toBe("precious\n");
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBeLessThan(300);
  });

  it("snapshots a sandbox through the API, starts two sandboxes from it at once, and leaves no image after they go", async () => {
    const call = (method: string, path: string, body?: unknown) =>
      api(server, server.adminKey, method, path, body);
    const sh = (id: string, script: string) =>
      call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] });
    const images = () =>
      engineGet<{ RepoTags: string[] | null }[]>("/images/json").flatMap((i) =>
        (i.RepoTags ?? []).filter((t) => t.startsWith("berth-snapshot/")),
      );
    const src = (await call("POST", "/v1/sandboxes", {})).body.id as string;
    await sh(src, "mkdir -p /workspace/d && echo snap > /workspace/d/f");
    const snap = await call("POST", `/v1/sandboxes/${src}/snapshots`, { name: "base" });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(snap.body.sizeBytes).toBeGreaterThan(0);
    expect(images()).toEqual([]);
    const made = await Promise.all(
      [1, 2].map(() => call("POST", "/v1/sandboxes", { fromSnapshot: snap.body.id })),
    );
    for (const m of made) expect(m.status, JSON.stringify(m.body)).toBe(201);
    const ids = made.map((m) => m.body.id as string);
    for (const id of ids) expect((await sh(id, "cat /workspace/d/f")).body.stdout).toBe("snap\n");
    // Both run from the one image the snapshot was loaded as.
    expect(images()).toHaveLength(1);
    for (const id of [src, ...ids])
      expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBeLessThan(300);
    await waitFor("the snapshot images to be gone", images, (xs) => xs.length === 0);
  });

  it.each(["open", "allowlist"])(
    "runs an agent session in a container (egress %s): claude inside, the gateway reached at the bridge's host address",
    async (egress) => {
      const call = (method: string, path: string, body?: unknown) =>
        api(server, server.adminKey, method, path, body);
      const sb = await call("POST", "/v1/sandboxes", { network: { egress, allow: [] } });
      expect(sb.status, JSON.stringify(sb.body)).toBe(201);
      const created = await call("POST", "/v1/sessions", {
        prompt: "write the file",
        pattern: "long-running",
        sandbox: { id: sb.body.id },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const s = await sessionIn((p) => call("GET", p), created.body.id, ["idle", "failed", "completed"]);
      expect(s.state, JSON.stringify(s)).toBe("idle");
      expect(s.result.subtype).toBe("success");
      expect(s.usage.inputTokens).toBeGreaterThan(0);
      const cat = await call("POST", `/v1/sandboxes/${sb.body.id}/exec`, {
        cmd: ["cat", "/workspace/agent.txt"],
      });
      expect(cat.body.stdout).toBe("from-agent\n");
      // The sandbox's processes hold a session token (the agent's environment), never the real key.
      const environ = async (pattern: string) =>
        (
          await call("POST", `/v1/sandboxes/${sb.body.id}/exec`, {
            cmd: [
              "sh",
              "-c",
              `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '${pattern}' || true`,
            ],
          })
        ).body.stdout.trim();
      expect(Number(await environ("^ANTHROPIC_API_KEY=berth-gw-"))).toBeGreaterThan(0);
      expect(await environ("sk-ant-docker-test")).toBe("0");
      // A sandbox without a network cannot reach the gateway: a clear 409, nothing left running.
      const none = await call("POST", "/v1/sandboxes", { network: { egress: "none" } });
      const refused = await call("POST", "/v1/sessions", {
        prompt: "x",
        pattern: "long-running",
        sandbox: { id: none.body.id },
      });
      expect(refused.status).toBe(409);
      expect(refused.body.error.message).toMatch(/network/);
      await call("DELETE", `/v1/sessions/${created.body.id}`);
      for (const id of [sb.body.id, none.body.id]) await call("DELETE", `/v1/sandboxes/${id}`);
    },
  );
});
