import { join } from "node:path";
import type { Store } from "@berth/core";
import { PostgresDb } from "./postgres-db.js";
import { SqlStore } from "./sql-store.js";
import { SqliteDb } from "./sqlite-db.js";

export type { Db, Sql } from "./db.js";
export { MIGRATIONS, migrate } from "./migrations.js";
export { SqlStore } from "./sql-store.js";
export { PostgresDb, SqliteDb };

/**
 * Opens the store: PostgreSQL when `databaseUrl` is a `postgres://` URL, else the SQLite file
 * `<dataDir>/berth.db`. Pending migrations run before it is returned.
 */
export async function openStore(o: { dataDir: string; databaseUrl?: string }): Promise<Store> {
  const url = o.databaseUrl;
  if (url && !/^postgres(ql)?:\/\//.test(url))
    throw new Error("BERTH_DATABASE_URL must start with postgres:// or postgresql://");
  const db = url ? new PostgresDb(url) : new SqliteDb(join(o.dataDir, "berth.db"));
  const store = new SqlStore(db);
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
