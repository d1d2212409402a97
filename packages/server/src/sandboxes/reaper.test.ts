/**
 * The reaper's health check against the real local runtime (runc) and a real SQLite store.
 * A full-suite run once lost a sandbox that a request had just woken: the reaper had looked at
 * it while it was hibernated (its processes gone), and failed it after the wake.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadConfig, type Runtime, type RuntimeStatus } from "@berth/core";
import { LinuxRuntime } from "@berth/runtime-linux";
import { openStore } from "@berth/store";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventHub } from "../events/event-log.js";
import { ServerMetrics } from "../metrics.js";
import { Reaper } from "./reaper.js";
import { SandboxService } from "./service.js";

const dataDir = mkdtempSync("/tmp/berth-reaper-");
const log = pino({ level: "silent" });
const linux = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64, log });
/** Inspections held here (when set) after the runtime answered, until the test lets them go. */
let hold: Promise<void> | undefined;
const seen: RuntimeStatus[] = [];
// The real runtime; only `inspect` can be made to wait, to run the interleaving that lost the sandbox.
const runtime = new Proxy(linux, {
  get(target, prop, receiver) {
    if (prop !== "inspect") return Reflect.get(target, prop, receiver);
    return async (id: string) => {
      const status = await target.inspect(id);
      seen.push(status);
      await hold;
      return status;
    };
  },
}) as Runtime;
const store = await openStore({ dataDir });
const events = new EventHub(store);
const sandboxes = new SandboxService({
  config: loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_SANDBOX_NETWORKS: "false" }),
  store,
  runtime,
  events,
  metrics: new ServerMetrics(),
  log,
  replica: "r1",
});
const reaper = new Reaper({ store, runtime, sandboxes, events, log, intervalMs: 60_000 });
/** "idle" events held here (when set) before they are recorded, until the test lets them go. */
let idleHold: Promise<void> | undefined;
const idleSeen: string[] = [];
// The reaper records an "idle" event between deciding a sandbox is idle and acting on it: holding it runs that window.
const heldEvents = new Proxy(events, {
  get(target, prop, receiver) {
    if (prop !== "append") return Reflect.get(target, prop, receiver);
    return async (id: string, type: string, data: Record<string, unknown>) => {
      if (type === "idle") {
        idleSeen.push(id);
        await idleHold;
      }
      return target.append(id, type as never, data);
    };
  },
}) as EventHub;
const idleReaper = new Reaper({ store, runtime, sandboxes, events: heldEvents, log, intervalMs: 60_000 });

beforeAll(async () => {
  await linux.start();
  await store.createTenant({ id: "t", name: "t", createdAt: new Date().toISOString() });
}, 120_000);

afterAll(async () => {
  await linux.purgeHostState();
  await linux.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("reaper health check", () => {
  it("does not fail a sandbox that was hibernated and woken while the check looked at it", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    await sandboxes.hibernate("t", id);
    let release = () => {};
    hold = new Promise((r) => {
      release = r;
    });
    // The check sees no processes (hibernated) and is held before it acts on what it saw...
    const check = reaper.checkHealth(id);
    for (const deadline = Date.now() + 30_000; seen.length === 0; ) {
      if (Date.now() > deadline) throw new Error("the reaper's check never inspected the sandbox");
      await new Promise((r) => setImmediate(r));
    }
    expect(seen[0]?.state).not.toBe("running");
    // ...while a request wakes the sandbox; then the check goes on with its old observation.
    hold = undefined;
    await sandboxes.wake("t", id);
    release();
    await check;
    const after = await sandboxes.get("t", id);
    expect(after.state, JSON.stringify(after)).toBe("running");
    expect((await runtime.inspect(id)).state).toBe("running");
    await sandboxes.finish(id, "deleted", null, "test done");
  }, 120_000);

  it("still fails a running sandbox whose processes died", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    await linux.hibernate(id); // its processes end behind the service's back
    await reaper.checkHealth(id);
    const after = await sandboxes.get("t", id);
    expect(after.state, JSON.stringify(after)).toBe("failed");
    expect(after.failureReason).toMatch(/ended unexpectedly/);
  }, 120_000);

  it("does not delete an idle sandbox that was used while the reaper decided to", async () => {
    const { id } = await sandboxes.create("t", {
      network: { egress: "none" },
      idle: { afterSeconds: 1, action: "delete" },
    });
    // The reaper judges idle CPU from two readings: this pass takes the first.
    await idleReaper.sweep();
    // The behaviour under test is idle time: let a little more than afterSeconds pass unused.
    await new Promise((r) => setTimeout(r, 1_200));
    let release = () => {};
    idleHold = new Promise((r) => {
      release = r;
    });
    const pass = idleReaper.sweep();
    for (const deadline = Date.now() + 30_000; !idleSeen.includes(id); ) {
      if (Date.now() > deadline) throw new Error(`the reaper never found the sandbox idle (saw ${idleSeen})`);
      await new Promise((r) => setImmediate(r));
    }
    // The reaper has decided; a request uses the sandbox before it acts.
    sandboxes.touch(id);
    idleHold = undefined;
    release();
    await pass;
    const after = await sandboxes.get("t", id);
    expect(after.state, JSON.stringify(after)).toBe("running");
    // Left alone long enough, it is deleted after all.
    await new Promise((r) => setTimeout(r, 1_200));
    await idleReaper.sweep();
    expect((await store.getSandbox(id))?.state).toBe("deleted");
  }, 120_000);
});
