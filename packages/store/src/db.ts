/**
 * Where statements run: a database, or one transaction on it. Repositories take this, so the
 * same code runs alone or as part of a transaction.
 */
export interface Sql {
  readonly dialect: "sqlite" | "postgres";
  /** Runs one statement with `?` placeholders; returns its rows (RETURNING included). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs `fn` in a transaction: its statements (through `tx` only) commit together when `fn`
   * resolves and roll back when it throws. On a transaction it nests as a savepoint.
   */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}

/** What the store needs from a SQL database; SQLite and PostgreSQL adapters implement it. */
export interface Db extends Sql {
  /** Runs `fn` holding a lock that only one migrating server at a time can hold. */
  migrationLock<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Runs several statements (a migration) atomically. */
  script(sql: string): Promise<void>;
  close(): Promise<void>;
}
