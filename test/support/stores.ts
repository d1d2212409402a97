/**
 * The store conformance harness: a suite of cases runs once on SQLite (a temporary data dir) and
 * once on PostgreSQL (a throwaway server of its own), each with a fresh, migrated store.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Store } from "@berth/core";
import { openStore } from "@berth/store";
import { afterAll, beforeAll, describe } from "vitest";
import { startPostgres } from "./postgres.js";

/** The store a case works on, and a way to close it and open the same database again. */
export interface StoreUnderTest {
  store: Store;
  /** Closes `store` and opens the same database again (it becomes `store`). */
  reopen(): Promise<Store>;
}

interface Opened {
  store: Store;
  reopen(): Promise<Store>;
  done(): Promise<void>;
}

async function sqlite(): Promise<Opened> {
  const dir = mkdtempSync(join(tmpdir(), "berth-store-"));
  return {
    store: await openStore({ dataDir: dir }),
    reopen: () => openStore({ dataDir: dir }),
    done: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgres(): Promise<Opened> {
  const pg = await startPostgres();
  // Two servers starting at once on an empty database both come up.
  const [first, second] = await Promise.all([
    openStore({ dataDir: "/nonexistent", databaseUrl: pg.url }),
    openStore({ dataDir: "/nonexistent", databaseUrl: pg.url }),
  ]);
  await second.close();
  return {
    store: first,
    reopen: () => openStore({ dataDir: "/nonexistent", databaseUrl: pg.url }),
    done: () => pg.stop(),
  };
}

/** Registers `cases` under "<database> <title>" for SQLite and for PostgreSQL. */
export function onEachDatabase(title: string, cases: (t: StoreUnderTest) => void): void {
  for (const [database, open] of [
    ["SQLite", sqlite],
    ["PostgreSQL", postgres],
  ] as const)
    describe(`${database} ${title}`, () => {
      let opened: Opened | undefined;
      const t: StoreUnderTest = {
        store: undefined as unknown as Store,
        reopen: async () => {
          await t.store.close();
          t.store = await (opened as Opened).reopen();
          return t.store;
        },
      };
      beforeAll(async () => {
        opened = await open();
        t.store = opened.store;
      });
      afterAll(async () => {
        await t.store?.close().catch(() => {});
        await opened?.done();
      });
      cases(t);
    });
}
