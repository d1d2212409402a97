/**
 * A sandbox's state, its billed running stretches and its exposed ports are written in one store
 * transaction: a failure part-way leaves all of them as they were, never a state that disagrees
 * with what is billed. Real runc and a real SQLite store; the store fails on request.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadConfig, type SandboxState, type Store, type StoreTx } from "@berth/core";
import { LinuxRuntime } from "@berth/runtime-linux";
import { openStore } from "@berth/store";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerMetrics } from "../metrics.js";
import { EventHub } from "./event-hub.js";
import { SandboxService } from "./service.js";

const dataDir = mkdtempSync("/tmp/berth-store-tx-");
const log = pino({ level: "silent" });
const runtime = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64, log });
const store = await openStore({ dataDir });

/** Store methods that throw (once each) the next time they are called, directly or in a transaction. */
const failNext = new Set<string>();
function failing<T extends StoreTx>(s: T): T {
  return new Proxy(s, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "transaction")
        return <R>(fn: (tx: StoreTx) => Promise<R>) => target.transaction((tx) => fn(failing(tx)));
      if (typeof prop !== "string" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (failNext.delete(prop)) return Promise.reject(new Error(`injected: ${prop} failed`));
        return value.apply(target, args);
      };
    },
  });
}

const sandboxes = new SandboxService({
  config: loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_SANDBOX_NETWORKS: "false" }),
  store: failing(store as Store),
  runtime,
  events: new EventHub(store),
  metrics: new ServerMetrics(),
  log,
  replica: "r1",
});

/** The sandbox's state in the store, and whether a billed stretch is open. */
async function recorded(
  id: string,
): Promise<{ state: SandboxState | undefined; billing: boolean; ports: number }> {
  const runs = await store.listSandboxRuns([id]);
  return {
    state: (await store.getSandbox(id))?.state,
    billing: runs.some((r) => r.endedAt === null),
    ports: (await store.listPorts(id)).length,
  };
}

beforeAll(async () => {
  await runtime.start();
  await store.createTenant({ id: "t", name: "t", createdAt: new Date().toISOString() });
}, 120_000);

afterAll(async () => {
  failNext.clear();
  await runtime.purgeHostState();
  await runtime.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("sandbox writes in one store transaction", () => {
  it("a pause whose billing stop fails keeps the sandbox running and billed, then pauses on a retry", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    expect(await recorded(id)).toEqual({ state: "running", billing: true, ports: 0 });
    failNext.add("endSandboxRun");
    await expect(sandboxes.pause("t", id)).rejects.toThrow(/injected/);
    // Not "paused" with the meter still running: the state change was rolled back with it.
    expect(await recorded(id)).toEqual({ state: "running", billing: true, ports: 0 });
    await sandboxes.pause("t", id);
    expect(await recorded(id)).toEqual({ state: "paused", billing: false, ports: 0 });
    await sandboxes.remove("t", id);
  });

  it("a delete whose port cleanup fails does not leave a deleted sandbox with open ports or billing", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    await store.upsertPort({
      sandboxId: id,
      tenantId: "t",
      port: 8080,
      public: false,
      tokenHash: "h",
      createdAt: new Date().toISOString(),
    });
    failNext.add("deletePorts");
    await sandboxes.remove("t", id).catch(() => {});
    const after = await recorded(id);
    // All three moved together, or none did.
    expect([
      { state: "running", billing: true, ports: 1 },
      { state: "failed", billing: false, ports: 0 },
      { state: "deleted", billing: false, ports: 0 },
    ]).toContainEqual(after);
    if (after.state === "running") await sandboxes.remove("t", id);
    expect(await recorded(id)).toEqual({ state: "deleted", billing: false, ports: 0 });
  });
});
