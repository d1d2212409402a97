/**
 * Deleting a sandbox that live agent sessions use: 409 `in_use` unless forced, and a forced
 * delete tells the session side which sessions lost their sandbox. Real runc sandbox, real
 * SQLite store; the sessions are rows in that store as the session service writes them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import {
  type BerthError,
  loadConfig,
  newSessionId,
  type SessionRecord,
  type SessionState,
} from "@berth/core";
import { LinuxRuntime } from "@berth/runtime-linux";
import { openStore } from "@berth/store";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventHub } from "../events/event-log.js";
import { ServerMetrics } from "../metrics.js";
import { SandboxService } from "./service.js";

const dataDir = mkdtempSync("/tmp/berth-in-use-");
const log = pino({ level: "silent" });
const runtime = new LinuxRuntime({ dataDir, ociRuntime: "auto", diskPoolSize: 0, defaultDiskMiB: 64, log });
const store = await openStore({ dataDir });
const sandboxes = new SandboxService({
  config: loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_SANDBOX_NETWORKS: "false" }),
  store,
  runtime,
  events: new EventHub(store),
  metrics: new ServerMetrics(),
  log,
  replica: "r1",
});

/** A session row in `state` bound to the sandbox. */
async function sessionIn(sandboxId: string, state: SessionState): Promise<string> {
  const now = new Date().toISOString();
  const s: SessionRecord = {
    id: newSessionId(),
    tenantId: "t",
    sandboxId,
    pattern: "long-running",
    state,
    agentSessionId: null,
    prompt: null,
    webhooks: null,
    options: { maxTurns: 1, maxBudgetUsd: null, maxDurationSeconds: null, cwd: "/workspace", env: {} },
    turns: 0,
    usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 },
    tokensUsd: 0,
    result: null,
    failureReason: null,
    failure: null,
    createdAt: now,
    updatedAt: now,
    endedAt: null,
  };
  await store.insertSession(s);
  return s.id;
}

beforeAll(async () => {
  await runtime.start();
  await store.createTenant({ id: "t", name: "t", createdAt: new Date().toISOString() });
}, 120_000);

afterAll(async () => {
  await runtime.purgeHostState();
  await runtime.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("deleting a sandbox that sessions use", () => {
  it("is 409 in_use while a live session uses it, and forced it ends and reports them lost", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    const idle = await sessionIn(id, "idle");
    const hibernated = await sessionIn(id, "hibernated");
    await sessionIn(id, "completed"); // an ended session does not hold it
    const lost: [string, string[]][] = [];
    const off = sandboxes.sessions.onLost(async (sandboxId, ids) => {
      lost.push([sandboxId, ids]);
    });
    const err = (await sandboxes.remove("t", id).catch((e: unknown) => e)) as BerthError;
    expect(err.code).toBe("in_use");
    expect(err.status).toBe(409);
    expect(err.message).toMatch(/force=true/);
    expect([...((err.details?.sessions ?? []) as string[])].sort()).toEqual([idle, hibernated].sort());
    expect((await sandboxes.get("t", id)).state).toBe("running");
    expect(lost).toEqual([]);

    await sandboxes.remove("t", id, { force: true });
    expect((await sandboxes.get("t", id)).state).toBe("deleted");
    expect((await runtime.inspect(id)).state).toBe("missing");
    expect(lost.map(([s, ids]) => [s, [...ids].sort()])).toEqual([[id, [idle, hibernated].sort()]]);
    // Deleting it again is still idempotent, and tells nobody again.
    await sandboxes.remove("t", id);
    expect(lost).toHaveLength(1);
    off();
  }, 120_000);

  it("deletes a sandbox whose sessions all ended without force", async () => {
    const { id } = await sandboxes.create("t", { network: { egress: "none" } });
    await sessionIn(id, "failed");
    await sandboxes.remove("t", id);
    expect((await sandboxes.get("t", id)).state).toBe("deleted");
  }, 120_000);
});
