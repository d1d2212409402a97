import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Db } from "./db.js";

/** The embedded store: one SQLite file, WAL so readers never wait for the writer. */
export class SqliteDb implements Db {
  readonly dialect = "sqlite" as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

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

  async migrationLock<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    // One process owns the file at a time in practice; IMMEDIATE keeps a second one out.
    return fn(this);
  }

  async script(sql: string): Promise<void> {
    this.db.exec(`BEGIN IMMEDIATE;\n${sql}\nCOMMIT;`);
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db.close();
  }
}
