import { ConflictError, type SandboxRecord, type Store } from "@berth/core";
import { beforeAll, describe, expect, it } from "vitest";
import { onEachDatabase } from "../../../test/support/stores.js";
import { openStore } from "./index.js";

const sandbox = (id: string, over: Partial<SandboxRecord> = {}): SandboxRecord => ({
  id,
  tenantId: "t1",
  state: "running",
  template: "default",
  resources: { cpus: 1, memoryMiB: 512, diskMiB: 1024, pids: 128 },
  network: { egress: "none", allow: [] },
  env: { A: "1", "B ü": "two words" },
  labels: { team: "x" },
  idle: null,
  timeoutSeconds: null,
  createdAt: "2026-01-01T00:00:00.000Z",
  expiresAt: null,
  lastActivityAt: "2026-01-01T00:00:00.000Z",
  failureReason: null,
  runtimeInfo: { pid: 42, nested: { a: [1, 2] } },
  volumes: [],
  replica: null,
  ...over,
});

onEachDatabase("store", (t) => {
  let store: Store;
  beforeAll(() => {
    store = t.store;
  });

  it("migrates idempotently", async () => {
    await store.migrate();
    await store.migrate();
  });

  it("keeps tenants and api keys; duplicates conflict; revoked keys stay revoked", async () => {
    await store.createTenant({ id: "t1", name: "one", createdAt: "2026-01-01T00:00:00.000Z" });
    await expect(
      store.createTenant({ id: "t1", name: "x", createdAt: "2026-01-01T00:00:00.000Z" }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await store.listTenants()).map((t) => t.id)).toEqual(["t1"]);
    const k = {
      id: "k1",
      tenantId: "t1",
      hash: "h1",
      admin: true,
      createdAt: "2026-01-01T00:00:00.000Z",
      revokedAt: null,
    };
    await store.createApiKey(k);
    await expect(store.createApiKey(k)).rejects.toBeInstanceOf(ConflictError);
    expect(await store.findApiKeyByHash("h1")).toEqual(k);
    expect(await store.findApiKeyByHash("nope")).toBeNull();
    await store.createApiKey({ ...k, id: "k2", hash: "h2", admin: false });
    await store.revokeApiKey("k2", "2026-02-01T00:00:00.000Z");
    expect((await store.findApiKeyByHash("h2"))?.revokedAt).toBe("2026-02-01T00:00:00.000Z");
    expect((await store.listApiKeys("t1")).map((x) => x.id)).toEqual(["k1", "k2"]);
  });

  it("keeps a tenant's monthly budget and adds its spend per month, concurrently", async () => {
    await store.createTenant({ id: "tb", name: "tb", createdAt: "2026-01-01T00:00:00.000Z" });
    expect((await store.getTenant("tb"))?.monthlyBudgetUsd).toBeNull();
    expect(await store.setTenantBudget("tb", 12.5)).toBe(true);
    expect((await store.getTenant("tb"))?.monthlyBudgetUsd).toBe(12.5);
    expect(await store.setTenantBudget("nobody", 1)).toBe(false);
    await Promise.all(Array.from({ length: 20 }, () => store.addTenantSpend("tb", "2026-01", 0.25)));
    await store.addTenantSpend("tb", "2026-02", 1);
    expect(await store.tenantSpend("tb", "2026-01")).toBeCloseTo(5, 10);
    expect(await store.tenantSpend("tb", "2026-02")).toBe(1);
    expect(await store.tenantSpend("tb", "2026-03")).toBe(0);
    expect(await store.setTenantBudget("tb", null)).toBe(true);
    expect((await store.getTenant("tb"))?.monthlyBudgetUsd).toBeNull();
  });

  it("stores sandboxes with their JSON fields and patches only what is given", async () => {
    await store.insertSandbox(sandbox("sb1"));
    await expect(store.insertSandbox(sandbox("sb1"))).rejects.toBeInstanceOf(ConflictError);
    expect(await store.getSandbox("sb1")).toEqual(sandbox("sb1"));
    const next = await store.updateSandbox("sb1", {
      state: "failed",
      failureReason: "gone",
      idle: { afterSeconds: 5, action: "delete" },
      labels: { team: "y" },
    });
    expect(next).toEqual({
      ...sandbox("sb1"),
      state: "failed",
      failureReason: "gone",
      idle: { afterSeconds: 5, action: "delete" },
      labels: { team: "y" },
    });
    expect((await store.updateSandbox("sb1", { idle: null }))?.idle).toBeNull();
    expect(await store.updateSandbox("nope", { state: "deleted" })).toBeNull();
    expect(await store.getSandbox("nope")).toBeNull();
  });

  it("lists by tenant, state and labels, page by page", async () => {
    for (let i = 0; i < 7; i++)
      await store.insertSandbox(
        sandbox(`sbp${i}`, {
          tenantId: i < 5 ? "t2" : "t3",
          labels: { even: String(i % 2 === 0), "k.x/y": "v" },
        }),
      );
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listSandboxes({ tenantId: "t2", limit: 2, cursor });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((s) => s.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(["sbp0", "sbp1", "sbp2", "sbp3", "sbp4"]);
    const even = await store.listSandboxes({ tenantId: "t2", labels: { even: "true", "k.x/y": "v" } });
    expect(even.items.map((s) => s.id)).toEqual(["sbp0", "sbp2", "sbp4"]);
    expect(even.nextCursor).toBeNull();
    const failed = await store.listSandboxes({ states: ["failed"] });
    expect(failed.items.map((s) => s.id)).toEqual(["sb1"]);
    expect((await store.listSandboxes({ states: [] })).items).toEqual([]);
    await store.purgeSandbox("sbp6");
    expect(await store.getSandbox("sbp6")).toBeNull();
  });

  it("keeps processes and numbers events in order", async () => {
    const p = {
      sandboxId: "sb1",
      pid: 7,
      cmd: ["sleep", "1"],
      cwd: null,
      state: "running" as const,
      exitCode: null,
      startedAt: "2026-01-01T00:00:00.000Z",
      exitedAt: null,
    };
    await store.upsertProcess(p);
    await store.upsertProcess({ ...p, state: "exited", exitCode: 3, exitedAt: "2026-01-01T00:00:01.000Z" });
    expect(await store.listProcesses("sb1")).toEqual([
      { ...p, state: "exited", exitCode: 3, exitedAt: "2026-01-01T00:00:01.000Z" },
    ]);
    const a = await store.appendEvent({
      sandboxId: "sb1",
      type: "state",
      data: { state: "running" },
      at: "2026-01-01T00:00:00.000Z",
    });
    const b = await store.appendEvent({
      sandboxId: "sb2",
      type: "oom",
      data: {},
      at: "2026-01-01T00:00:00.000Z",
    });
    const c = await store.appendEvent({
      sandboxId: "sb1",
      type: "oom",
      data: { count: 1 },
      at: "2026-01-01T00:00:01.000Z",
    });
    expect(b.seq).toBeGreaterThan(a.seq);
    expect(c.seq).toBeGreaterThan(b.seq);
    expect(await store.listEvents("sb1", 0)).toEqual([a, c]);
    expect(await store.listEvents("sb1", a.seq)).toEqual([c]);
    expect(await store.listEvents("sb1", 0, 1)).toEqual([a]);
    expect(await store.lastEvent("sb1")).toEqual(c);
    expect(await store.lastEvent("nope")).toBeNull();
  });

  it("keeps snapshots per tenant, newest first", async () => {
    const snap = (id: string, tenantId: string, createdAt: string) => ({
      id,
      tenantId,
      sandboxId: "sb1",
      name: id === "sn1" ? "first" : null,
      template: "default",
      resources: { cpus: 1, memoryMiB: 512, diskMiB: 1024, pids: 128 },
      env: { A: "1" },
      sizeBytes: 5_000_000_000,
      createdAt,
    });
    await store.insertSnapshot(snap("sn1", "t1", "2026-01-01T00:00:00.000Z"));
    await store.insertSnapshot(snap("sn2", "t1", "2026-01-02T00:00:00.000Z"));
    await store.insertSnapshot(snap("sn3", "t2", "2026-01-03T00:00:00.000Z"));
    await expect(store.insertSnapshot(snap("sn1", "t1", "x"))).rejects.toBeInstanceOf(ConflictError);
    expect(await store.getSnapshot("sn1")).toEqual(snap("sn1", "t1", "2026-01-01T00:00:00.000Z"));
    expect((await store.listSnapshots("t1")).map((x) => x.id)).toEqual(["sn2", "sn1"]);
    await store.deleteSnapshot("sn2");
    expect(await store.getSnapshot("sn2")).toBeNull();
  });

  it("keeps exposed ports per sandbox; re-exposing replaces the token; unexposing removes them", async () => {
    const port = (sandboxId: string, n: number, over = {}) => ({
      sandboxId,
      tenantId: "t1",
      port: n,
      public: false,
      tokenHash: `hash-${n}`,
      createdAt: "2026-01-01T00:00:00.000Z",
      ...over,
    });
    await store.upsertPort(port("sb1", 8080));
    await store.upsertPort(port("sb1", 3000));
    await store.upsertPort(port("sbp0", 8080, { tenantId: "t2", public: true, tokenHash: null }));
    expect(await store.getPort("sb1", 8080)).toEqual(port("sb1", 8080));
    expect(await store.getPort("sbp0", 8080)).toEqual(
      port("sbp0", 8080, { tenantId: "t2", public: true, tokenHash: null }),
    );
    expect(await store.getPort("sb1", 9999)).toBeNull();
    expect((await store.listPorts("sb1")).map((p) => p.port)).toEqual([3000, 8080]);
    const rotated = port("sb1", 8080, { tokenHash: "hash-new", createdAt: "2026-01-02T00:00:00.000Z" });
    await store.upsertPort(rotated);
    expect(await store.getPort("sb1", 8080)).toEqual(rotated);
    expect(await store.listPorts("sb1")).toHaveLength(2);
    expect(await store.deletePort("sb1", 3000)).toBe(true);
    expect(await store.deletePort("sb1", 3000)).toBe(false);
    expect(await store.listPorts("sb1")).toEqual([rotated]);
    await store.upsertPort(port("sbp1", 1));
    await store.upsertPort(port("sbp1", 65535));
    await store.deletePorts("sbp1");
    expect(await store.listPorts("sbp1")).toEqual([]);
    await store.upsertPort(port("sbp2", 80));
    await store.purgeSandbox("sbp2");
    expect(await store.listPorts("sbp2")).toEqual([]);
    expect(await store.getPort("sbp0", 8080)).not.toBeNull();
  });

  it("keeps volumes per tenant with unique names, and the volumes of a sandbox", async () => {
    const v = {
      id: "vo1",
      tenantId: "t1",
      name: "data",
      sizeMiB: 64,
      createdAt: "2026-01-01T00:00:00.000Z",
    };
    await store.insertVolume(v);
    await expect(store.insertVolume({ ...v, id: "vo2" })).rejects.toBeInstanceOf(ConflictError);
    await store.insertVolume({ ...v, id: "vo3", tenantId: "t2" });
    expect(await store.getVolumeByName("t1", "data")).toEqual(v);
    expect((await store.listVolumes("t2")).map((x) => x.id)).toEqual(["vo3"]);
    await store.deleteVolume("vo1");
    expect(await store.getVolumeByName("t1", "data")).toBeNull();
    await store.insertSandbox(sandbox("sbv", { volumes: [{ name: "data", mountPath: "/data" }] }));
    expect((await store.getSandbox("sbv"))?.volumes).toEqual([{ name: "data", mountPath: "/data" }]);
  });

  it("keeps the processes to restart on wake", async () => {
    const w = { sandboxId: "sb1", pid: 9, cmd: ["node", "server.js"], cwd: "/app", env: { PORT: "3000" } };
    await store.saveWakeProcess(w);
    await store.saveWakeProcess({ ...w, pid: 12, cwd: null });
    await store.saveWakeProcess({ ...w, env: { PORT: "4000" } });
    expect(await store.listWakeProcesses("sb1")).toEqual([
      { ...w, env: { PORT: "4000" } },
      { ...w, pid: 12, cwd: null },
    ]);
    await store.deleteWakeProcess("sb1", 9);
    expect((await store.listWakeProcesses("sb1")).map((x) => x.pid)).toEqual([12]);
  });

  it("keeps replicas, and which replica holds each sandbox, snapshot and volume", async () => {
    await store.upsertReplica({
      id: "r1",
      url: "http://10.0.0.1:7070",
      seenAt: "2026-01-01T00:00:00.000Z",
    });
    await store.upsertReplica({
      id: "r1",
      url: "http://10.0.0.1:7071",
      seenAt: "2026-01-01T00:00:05.000Z",
    });
    expect(await store.getReplica("r1")).toEqual({
      id: "r1",
      url: "http://10.0.0.1:7071",
      seenAt: "2026-01-01T00:00:05.000Z",
    });
    expect(await store.getReplica("nope")).toBeNull();
    await store.insertSandbox(sandbox("sbrep1", { replica: "r1", tenantId: "trep" }));
    await store.insertSandbox(sandbox("sbrep2", { replica: "r2", tenantId: "trep" }));
    await store.insertSandbox(sandbox("sbrep3", { tenantId: "trep" }));
    expect((await store.getSandbox("sbrep1"))?.replica).toBe("r1");
    const mine = await store.listSandboxes({ tenantId: "trep", replica: "r1" });
    expect(mine.items.map((x) => x.id)).toEqual(["sbrep1", "sbrep3"]);
    await store.insertSnapshot({
      id: "snrep",
      tenantId: "trep",
      sandboxId: "sbrep1",
      name: null,
      template: "default",
      resources: { cpus: 1, memoryMiB: 512, diskMiB: 1024, pids: 128 },
      env: {},
      sizeBytes: 1,
      createdAt: "2026-01-01T00:00:00.000Z",
    } as never);
    expect(await store.replicaOf("snapshots", "snrep")).toBeNull();
    await store.setReplicaOf("snapshots", "snrep", "r2");
    expect(await store.replicaOf("snapshots", "snrep")).toBe("r2");
  });

  it("counts sandboxes by state", async () => {
    const counts = await store.countSandboxesByState();
    const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
    expect(total).toBeGreaterThan(0);
    await store.insertSandbox(sandbox("sbcount", { state: "paused" }));
    expect((await store.countSandboxesByState()).paused).toBe((counts.paused ?? 0) + 1);
  });

  it("keeps everything across close and reopen", async () => {
    store = await t.reopen();
    expect((await store.getSandbox("sb1"))?.state).toBe("failed");
    expect((await store.listEvents("sb1", 0)).length).toBe(2);
    expect((await store.getPort("sb1", 8080))?.tokenHash).toBe("hash-new");
  });
});

describe("openStore", () => {
  it("refuses a database URL it cannot use", async () => {
    await expect(openStore({ dataDir: "/tmp", databaseUrl: "mysql://x" })).rejects.toThrow(/postgres:\/\//);
  });
});
