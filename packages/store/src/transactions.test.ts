import { ConflictError, type SandboxRecord, type Store, type StoreTx } from "@berth/core";
import { beforeAll, expect, it } from "vitest";
import { onEachDatabase } from "../../../test/support/stores.js";

const at = "2026-01-01T00:00:00.000Z";

const sandbox = (id: string, tenantId: string): SandboxRecord => ({
  id,
  tenantId,
  state: "running",
  template: "default",
  resources: { cpus: 1, memoryMiB: 512, diskMiB: 1024, pids: 128 },
  network: { egress: "none", allow: [] },
  env: {},
  labels: {},
  idle: null,
  timeoutSeconds: null,
  createdAt: at,
  expiresAt: null,
  lastActivityAt: at,
  failureReason: null,
  runtimeInfo: {},
  volumes: [],
  replica: null,
});

const port = (sandboxId: string, tenantId: string, n: number) => ({
  sandboxId,
  tenantId,
  port: n,
  public: false,
  tokenHash: `h${n}`,
  createdAt: at,
});

/** Writes to five aggregates for `id` through `s` (a store or a transaction). */
async function writeAll(s: StoreTx, id: string): Promise<void> {
  await s.insertSandbox(sandbox(id, `t_${id}`));
  await s.upsertPort(port(id, `t_${id}`, 8080));
  await s.addTenantSpend(`t_${id}`, "2026-01", 1.5);
  await s.startSandboxRun(id, at);
  await s.appendEvent({ sandboxId: id, type: "state", data: { state: "running" }, at });
}

/** What `writeAll` left for `id`, as one comparable value. */
async function readAll(s: StoreTx, id: string) {
  return {
    sandbox: (await s.getSandbox(id))?.id ?? null,
    ports: (await s.listPorts(id)).map((p) => p.port),
    spend: await s.tenantSpend(`t_${id}`, "2026-01"),
    runs: (await s.listSandboxRuns([id])).length,
    events: (await s.listEvents(id, 0)).length,
  };
}

const NOTHING = { sandbox: null, ports: [], spend: 0, runs: 0, events: 0 };
const EVERYTHING = (id: string) => ({ sandbox: id, ports: [8080], spend: 1.5, runs: 1, events: 1 });

/** A promise and the function that settles it (to hold a transaction open at a known point). */
function latch(): { done: Promise<void>; open: () => void } {
  let open!: () => void;
  const done = new Promise<void>((r) => {
    open = r;
  });
  return { done, open };
}

/** The transaction API: every Store must pass it. */
onEachDatabase("store transactions", (t) => {
  let store: Store;
  beforeAll(() => {
    store = t.store;
  });

  it("commits every write made through the transaction together and returns the body's value", async () => {
    const value = await store.transaction(async (tx) => {
      await writeAll(tx, "sb_commit");
      // Inside, the transaction reads its own writes.
      expect(await readAll(tx, "sb_commit")).toEqual(EVERYTHING("sb_commit"));
      return 42;
    });
    expect(value).toBe(42);
    expect(await readAll(store, "sb_commit")).toEqual(EVERYTHING("sb_commit"));
  });

  it("rolls every write back when the body throws, and rethrows the same error", async () => {
    const boom = new Error("boom");
    await expect(
      store.transaction(async (tx) => {
        await writeAll(tx, "sb_thrown");
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await readAll(store, "sb_thrown")).toEqual(NOTHING);
  });

  it("rolls every write back when a statement inside fails (a duplicate key)", async () => {
    await store.insertSandbox(sandbox("sb_taken", "t_taken"));
    await expect(
      store.transaction(async (tx) => {
        await writeAll(tx, "sb_dup");
        await tx.insertSandbox(sandbox("sb_taken", "t_taken"));
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await readAll(store, "sb_dup")).toEqual(NOTHING);
    // The store works normally afterwards (the connection was given back clean).
    await writeAll(store, "sb_after");
    expect(await readAll(store, "sb_after")).toEqual(EVERYTHING("sb_after"));
  });

  it("a nested transaction that fails undoes only its own writes", async () => {
    await store.transaction(async (tx) => {
      await writeAll(tx, "sb_outer");
      await expect(
        tx.transaction(async (inner) => {
          await writeAll(inner, "sb_inner");
          throw new Error("inner");
        }),
      ).rejects.toThrow("inner");
      await tx.transaction(async (inner) => writeAll(inner, "sb_inner_ok"));
    });
    expect(await readAll(store, "sb_outer")).toEqual(EVERYTHING("sb_outer"));
    expect(await readAll(store, "sb_inner")).toEqual(NOTHING);
    expect(await readAll(store, "sb_inner_ok")).toEqual(EVERYTHING("sb_inner_ok"));
  });

  it("a reader outside never sees a transaction half-done", async () => {
    const firstWritten = latch();
    const finish = latch();
    const tx = store.transaction(async (t) => {
      await t.insertSandbox(sandbox("sb_half_a", "t_half"));
      firstWritten.open();
      await finish.done;
      await t.insertSandbox(sandbox("sb_half_b", "t_half"));
    });
    await firstWritten.done;
    // Sent while the transaction holds one of its two writes.
    const seen = store.listSandboxes({ tenantId: "t_half" });
    finish.open();
    await tx;
    const ids = (await seen).items.map((s) => s.id);
    expect([[], ["sb_half_a", "sb_half_b"]]).toContainEqual(ids);
    expect((await store.listSandboxes({ tenantId: "t_half" })).items).toHaveLength(2);
  });

  it("runs many transactions and plain writes at once without losing or mixing any", async () => {
    const n = 12;
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        i % 3 === 2
          ? store.transaction(async (tx) => {
              await writeAll(tx, `sb_many_${i}`);
              throw new Error(`fail ${i}`);
            })
          : i % 3 === 1
            ? writeAll(store, `sb_many_${i}`)
            : store.transaction((tx) => writeAll(tx, `sb_many_${i}`)),
      ),
    );
    for (let i = 0; i < n; i++) {
      expect(results[i]?.status).toBe(i % 3 === 2 ? "rejected" : "fulfilled");
      expect(await readAll(store, `sb_many_${i}`)).toEqual(
        i % 3 === 2 ? NOTHING : EVERYTHING(`sb_many_${i}`),
      );
    }
  });

  it("refuses the store itself inside its own transaction (instead of waiting for it), and rolls back", async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.insertSandbox(sandbox("sb_wrong_handle", "t_wrong"));
        await store.getSandbox("sb_wrong_handle");
      }),
    ).rejects.toThrow(/inside its own transaction/);
    await expect(store.transaction(async () => store.transaction(async () => 1))).rejects.toThrow(
      /inside its own transaction/,
    );
    expect(await store.getSandbox("sb_wrong_handle")).toBeNull();
  });

  it("refuses a transaction's handle once the transaction ended", async () => {
    let leaked: StoreTx | undefined;
    await store.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked?.getSandbox("x")).rejects.toThrow(/after the transaction ended/);
    await expect(leaked?.insertSandbox(sandbox("sb_leaked", "t_leaked"))).rejects.toThrow(
      /after the transaction ended/,
    );
    expect(await store.getSandbox("sb_leaked")).toBeNull();
  });

  it("purges a sandbox with everything kept about it, leaving other sandboxes alone", async () => {
    for (const id of ["sb_purged", "sb_kept"]) {
      await writeAll(store, id);
      await store.upsertProcess({
        sandboxId: id,
        pid: 5,
        cmd: ["sleep", "9"],
        cwd: null,
        state: "running",
        exitCode: null,
        startedAt: at,
        exitedAt: null,
      });
      await store.saveWakeProcess({ sandboxId: id, pid: 5, cmd: ["sleep", "9"], cwd: null, env: {} });
    }
    await store.purgeSandbox("sb_purged");
    expect(await readAll(store, "sb_purged")).toEqual({ ...NOTHING, spend: 1.5 });
    expect(await store.listProcesses("sb_purged")).toEqual([]);
    expect(await store.listWakeProcesses("sb_purged")).toEqual([]);
    expect(await readAll(store, "sb_kept")).toEqual(EVERYTHING("sb_kept"));
    expect(await store.listProcesses("sb_kept")).toHaveLength(1);
    expect(await store.listWakeProcesses("sb_kept")).toHaveLength(1);
  });
});
