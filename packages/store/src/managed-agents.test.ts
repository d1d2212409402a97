/** The Managed Agents repository on SQLite and on a real PostgreSQL: the same queries, the same answers. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ManagedAgentRecord, Store } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres } from "../../../test/support/postgres.js";
import { openStore } from "./index.js";

const integration = (id: string, tenantId: string, createdAt: string): ManagedAgentRecord => ({
  id,
  tenantId,
  replica: "r1",
  environmentId: "env_1",
  baseUrl: "https://api.anthropic.com",
  keyCipher: "v1.sealed",
  webhookCipher: null,
  maxConcurrent: 2,
  sandbox: { template: "default", network: { egress: "none" }, keep: false },
  state: "active",
  failure: null,
  createdAt,
  updatedAt: createdAt,
});

function suite(name: string, open: () => Promise<{ store: Store; done: () => Promise<void> }>) {
  describe(`managed agents on ${name}`, () => {
    let h: Awaited<ReturnType<typeof open>>;
    let store: Store;
    beforeAll(async () => {
      h = await open();
      store = h.store;
    }, 60_000);
    afterAll(async () => {
      await store?.close().catch(() => {});
      await h?.done();
    });

    it("keeps integrations and their items, lists by tenant and state, counts items and finds their sandboxes", async () => {
      const repo = store.managedAgents;
      await repo.insert(integration("ma1", "t1", "2026-01-01T00:00:00.000Z"));
      await repo.insert(integration("ma2", "t1", "2026-01-02T00:00:00.000Z"));
      await repo.insert(integration("ma3", "t2", "2026-01-03T00:00:00.000Z"));
      expect(await repo.get("ma1")).toEqual(integration("ma1", "t1", "2026-01-01T00:00:00.000Z"));
      expect(await repo.get("nope")).toBeNull();
      expect((await repo.list({ tenantId: "t1" })).map((r) => r.id)).toEqual(["ma2", "ma1"]);
      const failed = await repo.update("ma2", { state: "failed", failure: "refused" });
      expect(failed).toMatchObject({ state: "failed", failure: "refused" });
      expect((await repo.list({ states: ["active"] })).map((r) => r.id)).toEqual(["ma3", "ma1"]);

      const item = (workId: string, integrationId: string, startedAt: string) => ({
        workId,
        integrationId,
        sessionId: `s-${workId}`,
        sandboxId: null,
        state: "starting" as const,
        startedAt,
        endedAt: null,
        failure: null,
      });
      await repo.insertItem(item("w1", "ma1", "2026-01-01T00:00:01.000Z"));
      await repo.insertItem(item("w2", "ma1", "2026-01-01T00:00:02.000Z"));
      await repo.insertItem(item("w3", "ma3", "2026-01-01T00:00:03.000Z"));
      await repo.updateItem("ma1", "w1", { sandboxId: "sb1", state: "running" });
      await repo.updateItem("ma1", "w2", {
        sandboxId: "sb2",
        state: "failed",
        endedAt: "2026-01-01T00:01:00.000Z",
        failure: "exit 1",
      });
      await repo.updateItem("ma3", "w3", { sandboxId: "sb3" });
      expect((await repo.listItems("ma1")).map((i) => [i.workId, i.state, i.sandboxId])).toEqual([
        ["w2", "failed", "sb2"],
        ["w1", "running", "sb1"],
      ]);
      expect((await repo.listItems("ma1", 1)).map((i) => i.workId)).toEqual(["w2"]);
      expect((await repo.listItemsIn(["starting", "running"])).map((i) => i.workId)).toEqual(["w1", "w3"]);
      expect(await repo.countItems("ma1")).toEqual({ running: 1, failed: 1 });
      expect((await repo.listItemSandboxes("t1")).sort()).toEqual(["sb1", "sb2"]);
      expect((await repo.listItemSandboxes()).sort()).toEqual(["sb1", "sb2", "sb3"]);
      // Claimed again after its lease was lost: the item starts over.
      await repo.insertItem(item("w2", "ma1", "2026-01-01T00:02:00.000Z"));
      expect((await repo.listItems("ma1"))[0]).toMatchObject({
        workId: "w2",
        state: "starting",
        sandboxId: null,
        endedAt: null,
        failure: null,
        startedAt: "2026-01-01T00:02:00.000Z",
      });
    });
  });
}

suite("SQLite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-managed-store-"));
  return {
    store: await openStore({ dataDir: dir }),
    done: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

suite("PostgreSQL", async () => {
  const pg = await startPostgres();
  return { store: await openStore({ dataDir: "/nonexistent", databaseUrl: pg.url }), done: () => pg.stop() };
});
