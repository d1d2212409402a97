/** What the store needs from a SQL database; SQLite and PostgreSQL adapters implement it. */
export interface Db {
  readonly dialect: "sqlite" | "postgres";
  /** Runs one statement with `?` placeholders; returns its rows (RETURNING included). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs `fn` holding a lock that only one migrating server at a time can hold. */
  migrationLock<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Runs several statements (a migration) atomically. */
  script(sql: string): Promise<void>;
  close(): Promise<void>;
}
