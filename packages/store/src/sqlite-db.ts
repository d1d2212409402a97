import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Db, Sql } from "./db.js";
import { type OpenTx, refuseEnded, refuseInsideTx, runTxBody, savepointName } from "./tx-scope.js";

const noop = () => {};

/**
 * The embedded store: one SQLite file, WAL so readers never wait for the writer.
 *
 * One connection serves the whole process, so a transaction owns it while its (async) body
 * runs: statements from elsewhere queue behind it, in order, and run when it ends. With nothing
 * queued a statement runs at once, as before transactions existed.
 */
export class SqliteDb implements Db {
  readonly dialect = "sqlite" as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** Work waiting for the connection (a transaction and whatever came after it). */
  private queued = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode: durable across process crashes, fast enough for an exec path.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("foreign_keys = ON");
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    refuseInsideTx(this);
    if (this.queued === 0) return this.run<T>(sql, params);
    return this.inTurn(async () => this.run<T>(sql, params));
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    refuseInsideTx(this);
    return this.inTurn(async () => {
      // IMMEDIATE takes the write lock now: another process cannot make it fail half-way.
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const result = await runTxBody(this, (scope) => this.handle(scope), fn);
        this.db.exec("COMMIT");
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  async migrationLock<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    // One process owns the file at a time in practice; IMMEDIATE keeps a second one out.
    return fn(this);
  }

  async script(sql: string): Promise<void> {
    refuseInsideTx(this);
    const run = () => this.db.exec(`BEGIN IMMEDIATE;\n${sql}\nCOMMIT;`);
    if (this.queued === 0) run();
    else await this.inTurn(async () => run());
  }

  async close(): Promise<void> {
    await this.tail;
    this.statements.clear();
    this.db.close();
  }

  /** The handle a transaction's body gets: statements on the connection it owns; savepoints nest. */
  private handle(scope: OpenTx): Sql {
    const tx: Sql = {
      dialect: "sqlite",
      query: async <R>(sql: string, params: unknown[] = []) => {
        refuseEnded(scope);
        return this.run<R>(sql, params);
      },
      transaction: async <R>(fn: (inner: Sql) => Promise<R>) => {
        refuseEnded(scope);
        const name = savepointName();
        this.db.exec(`SAVEPOINT ${name}`);
        try {
          const result = await runTxBody(this, (s) => this.handle(s), fn);
          this.db.exec(`RELEASE ${name}`);
          return result;
        } catch (err) {
          this.db.exec(`ROLLBACK TO ${name}`);
          this.db.exec(`RELEASE ${name}`);
          throw err;
        }
      },
    };
    return tx;
  }

  /** Runs `job` when everything queued before it is done. */
  private inTurn<T>(job: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(job);
    this.tail = result.then(noop, noop).then(() => {
      this.queued--;
    });
    return result;
  }

  private run<T>(sql: string, params: unknown[]): T[] {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    const args = params.map((p) => (typeof p === "boolean" ? Number(p) : p));
    if (st.reader) return st.all(...args) as T[];
    st.run(...args);
    return [];
  }
}
