import pg from "pg";
import type { Db, Sql } from "./db.js";
import { type OpenTx, refuseEnded, refuseInsideTx, runTxBody, savepointName } from "./tx-scope.js";

/** An arbitrary constant: the advisory lock every Berth server takes while migrating. */
const MIGRATION_LOCK = 7_307_070;

/** `?` placeholders as PostgreSQL's `$1, $2, ...` (the store's SQL has no `?` in literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** PostgreSQL through a connection pool (several servers may share the database). */
export class PostgresDb implements Db {
  readonly dialect = "postgres" as const;
  private readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection dropped by the server must not crash the process.
    this.pool.on("error", () => {});
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    refuseInsideTx(this);
    const res = await this.pool.query(numbered(sql), params as unknown[]);
    return res.rows as T[];
  }

  /** A transaction holds one pooled connection from BEGIN to COMMIT or ROLLBACK. */
  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    refuseInsideTx(this);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      try {
        const result = await runTxBody(this, (scope) => this.handle(client, scope), fn);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch((e: Error) => {
          // A connection that cannot roll back is not given to anyone else.
          broken = e;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  async migrationLock<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
      const scoped: Db = {
        dialect: "postgres",
        query: async <R>(sql: string, params: unknown[] = []) =>
          (await client.query(numbered(sql), params as unknown[])).rows as R[],
        transaction: () =>
          Promise.reject(new Error("no transactions while migrating: migrations are scripts")),
        migrationLock: (f) => f(scoped),
        script: async (sql) => {
          await client.query(`BEGIN;\n${sql}\nCOMMIT;`).catch(async (err) => {
            await client.query("ROLLBACK").catch(() => {});
            throw err;
          });
        },
        close: async () => {},
      };
      return await fn(scoped);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
      client.release();
    }
  }

  async script(sql: string): Promise<void> {
    await this.migrationLock((db) => db.script(sql));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** The handle a transaction's body gets: statements on its connection; savepoints nest. */
  private handle(client: pg.PoolClient, scope: OpenTx): Sql {
    return {
      dialect: "postgres",
      query: async <R>(sql: string, params: unknown[] = []) => {
        refuseEnded(scope);
        return (await client.query(numbered(sql), params as unknown[])).rows as R[];
      },
      transaction: async <R>(fn: (inner: Sql) => Promise<R>) => {
        refuseEnded(scope);
        const name = savepointName();
        await client.query(`SAVEPOINT ${name}`);
        try {
          const result = await runTxBody(this, (s) => this.handle(client, s), fn);
          await client.query(`RELEASE SAVEPOINT ${name}`);
          return result;
        } catch (err) {
          await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
          throw err;
        }
      },
    };
  }
}
