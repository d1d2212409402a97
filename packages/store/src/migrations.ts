import type { Db } from "./db.js";

/** One schema change. Never edit a released migration: add the next one. */
interface Migration {
  version: number;
  name: string;
  /** Portable SQL; `{{SERIAL}}` becomes the dialect's auto-increment key. */
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "tenants, keys, sandboxes, processes, events",
    sql: `
      CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        hash TEXT NOT NULL UNIQUE,
        admin INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
      CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        state TEXT NOT NULL,
        template TEXT NOT NULL,
        resources TEXT NOT NULL,
        network TEXT NOT NULL,
        env TEXT NOT NULL,
        labels TEXT NOT NULL,
        idle TEXT,
        timeout_seconds INTEGER,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        last_activity_at TEXT NOT NULL,
        failure_reason TEXT,
        runtime_info TEXT NOT NULL
      );
      CREATE INDEX sandboxes_tenant ON sandboxes (tenant_id, id);
      CREATE INDEX sandboxes_state ON sandboxes (state, id);
      CREATE TABLE processes (
        sandbox_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        cmd TEXT NOT NULL,
        cwd TEXT,
        state TEXT NOT NULL,
        exit_code INTEGER,
        started_at TEXT NOT NULL,
        exited_at TEXT,
        PRIMARY KEY (sandbox_id, pid)
      );
      CREATE TABLE sandbox_events (
        seq {{SERIAL}},
        sandbox_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at TEXT NOT NULL
      );
      CREATE INDEX sandbox_events_sandbox ON sandbox_events (sandbox_id, seq);
    `,
  },
  {
    version: 2,
    name: "ports",
    sql: `
      CREATE TABLE ports (
        sandbox_id TEXT NOT NULL,
        port INTEGER NOT NULL,
        tenant_id TEXT NOT NULL,
        public INTEGER NOT NULL,
        token_hash TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (sandbox_id, port)
      );
    `,
  },
  {
    version: 3,
    name: "snapshots",
    sql: `
      CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        sandbox_id TEXT NOT NULL,
        name TEXT,
        template TEXT NOT NULL,
        resources TEXT NOT NULL,
        env TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX snapshots_tenant ON snapshots (tenant_id, id);
    `,
  },
  {
    version: 4,
    name: "volumes",
    sql: `
      CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        size_mib INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (tenant_id, name)
      );
      ALTER TABLE sandboxes ADD COLUMN volumes TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 5,
    name: "processes restarted on wake",
    sql: `
      CREATE TABLE wake_processes (
        sandbox_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        cmd TEXT NOT NULL,
        cwd TEXT,
        env TEXT NOT NULL,
        PRIMARY KEY (sandbox_id, pid)
      );
    `,
  },
  {
    version: 6,
    name: "audit trail",
    sql: `
      CREATE TABLE audit_log (
        id {{SERIAL}},
        at TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        request_id TEXT NOT NULL
      );
      CREATE INDEX audit_log_at ON audit_log (at);
    `,
  },
  {
    version: 7,
    name: "replicas",
    sql: `
      CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        seen_at TEXT NOT NULL
      );
      ALTER TABLE sandboxes ADD COLUMN replica TEXT;
      ALTER TABLE snapshots ADD COLUMN replica TEXT;
      ALTER TABLE volumes ADD COLUMN replica TEXT;
    `,
  },
  {
    version: 8,
    name: "agent sessions",
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        sandbox_id TEXT NOT NULL,
        pattern TEXT NOT NULL,
        state TEXT NOT NULL,
        agent_session_id TEXT,
        options TEXT NOT NULL,
        turns INTEGER NOT NULL,
        usage TEXT NOT NULL,
        tokens_usd DOUBLE PRECISION NOT NULL,
        result TEXT,
        failure_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        ended_at TEXT
      );
      CREATE INDEX sessions_tenant ON sessions (tenant_id, created_at);
      CREATE INDEX sessions_sandbox ON sessions (sandbox_id);
      CREATE TABLE session_events (
        seq {{SERIAL}},
        session_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at TEXT NOT NULL
      );
      CREATE INDEX session_events_session ON session_events (session_id, seq);
    `,
  },
  {
    version: 9,
    name: "tenant monthly model budgets",
    sql: `
      ALTER TABLE tenants ADD COLUMN monthly_budget_usd DOUBLE PRECISION;
      CREATE TABLE tenant_spend (
        tenant_id TEXT NOT NULL,
        month TEXT NOT NULL,
        usd DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, month)
      );
    `,
  },
  {
    version: 10,
    name: "compute billed for what ran; session failures",
    sql: `
      CREATE TABLE sandbox_runs (
        sandbox_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT
      );
      CREATE INDEX sandbox_runs_sandbox ON sandbox_runs (sandbox_id, started_at);
      -- Sandboxes running now were billed from their creation before: they keep that start.
      INSERT INTO sandbox_runs (sandbox_id, started_at, ended_at)
        SELECT id, created_at, NULL FROM sandboxes WHERE state = 'running';
      ALTER TABLE sessions ADD COLUMN failure TEXT;
    `,
  },
  {
    version: 11,
    name: "claude managed agents integrations and their work items",
    sql: `
      CREATE TABLE managed_agents (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        replica TEXT NOT NULL,
        environment_id TEXT NOT NULL,
        base_url TEXT NOT NULL,
        key_cipher TEXT NOT NULL,
        webhook_cipher TEXT,
        max_concurrent INTEGER NOT NULL,
        sandbox TEXT NOT NULL,
        state TEXT NOT NULL,
        failure TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX managed_agents_tenant ON managed_agents (tenant_id, created_at);
      CREATE TABLE managed_agent_items (
        work_id TEXT NOT NULL,
        integration_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        sandbox_id TEXT,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        failure TEXT,
        PRIMARY KEY (integration_id, work_id)
      );
      CREATE INDEX managed_agent_items_state ON managed_agent_items (state);
    `,
  },
  {
    version: 12,
    name: "a session keeps the prompt it was created with and its webhooks",
    sql: `
      ALTER TABLE sessions ADD COLUMN prompt TEXT;
      ALTER TABLE sessions ADD COLUMN webhooks TEXT;
    `,
  },
];

const SERIAL = { sqlite: "INTEGER PRIMARY KEY AUTOINCREMENT", postgres: "BIGSERIAL PRIMARY KEY" };

/** Applies the migrations this database has not seen, in order, each in its own transaction. */
export async function migrate(db: Db): Promise<number[]> {
  return db.migrationLock(async (locked) => {
    await locked.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    );
    const done = new Set(
      (await locked.query<{ version: number }>("SELECT version FROM schema_migrations")).map((r) =>
        Number(r.version),
      ),
    );
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      const sql = m.sql.replaceAll("{{SERIAL}}", SERIAL[db.dialect]);
      const record = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, '${m.name.replaceAll("'", "''")}', '${new Date().toISOString()}');`;
      await locked.script(`${sql}\n${record}`);
      applied.push(m.version);
    }
    return applied;
  });
}
