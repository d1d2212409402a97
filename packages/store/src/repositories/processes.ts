import type { ProcessRecord, ProcessStore, WakeProcess } from "@berth/core";
import type { Sql } from "../db.js";
import { int, json, parse, type Row, str } from "../sql.js";

function toProcess(r: Row): ProcessRecord {
  return {
    sandboxId: String(r.sandbox_id),
    pid: Number(r.pid),
    cmd: parse(r.cmd),
    cwd: str(r.cwd),
    state: String(r.state) as ProcessRecord["state"],
    exitCode: int(r.exit_code),
    startedAt: String(r.started_at),
    exitedAt: str(r.exited_at),
  };
}

function toWakeProcess(r: Row): WakeProcess {
  return {
    sandboxId: String(r.sandbox_id),
    pid: Number(r.pid),
    cmd: parse(r.cmd),
    cwd: str(r.cwd),
    env: parse(r.env),
  };
}

/** Sandboxes' background processes (`processes`) and those to restart on wake (`wake_processes`). */
export class ProcessRows implements ProcessStore {
  constructor(private readonly sql: Sql) {}

  async upsertProcess(p: ProcessRecord): Promise<void> {
    await this.sql.query(
      `INSERT INTO processes (sandbox_id, pid, cmd, cwd, state, exit_code, started_at, exited_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, pid) DO UPDATE SET cmd = excluded.cmd, cwd = excluded.cwd, state = excluded.state,
         exit_code = excluded.exit_code, started_at = excluded.started_at, exited_at = excluded.exited_at`,
      [p.sandboxId, p.pid, json(p.cmd), p.cwd, p.state, p.exitCode, p.startedAt, p.exitedAt],
    );
  }

  async listProcesses(sandboxId: string): Promise<ProcessRecord[]> {
    const rows = await this.sql.query<Row>("SELECT * FROM processes WHERE sandbox_id = ? ORDER BY pid", [
      sandboxId,
    ]);
    return rows.map(toProcess);
  }

  async saveWakeProcess(p: WakeProcess): Promise<void> {
    await this.sql.query(
      `INSERT INTO wake_processes (sandbox_id, pid, cmd, cwd, env) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (sandbox_id, pid) DO UPDATE SET cmd = excluded.cmd, cwd = excluded.cwd, env = excluded.env`,
      [p.sandboxId, p.pid, json(p.cmd), p.cwd, json(p.env)],
    );
  }

  async listWakeProcesses(sandboxId: string): Promise<WakeProcess[]> {
    const rows = await this.sql.query<Row>("SELECT * FROM wake_processes WHERE sandbox_id = ? ORDER BY pid", [
      sandboxId,
    ]);
    return rows.map(toWakeProcess);
  }

  async deleteWakeProcess(sandboxId: string, pid: number): Promise<void> {
    await this.sql.query("DELETE FROM wake_processes WHERE sandbox_id = ? AND pid = ?", [sandboxId, pid]);
  }

  /** Forgets every process of a sandbox, running and to restart (when the sandbox is purged). */
  async deleteProcessesOf(sandboxId: string): Promise<void> {
    await this.sql.query("DELETE FROM processes WHERE sandbox_id = ?", [sandboxId]);
    await this.sql.query("DELETE FROM wake_processes WHERE sandbox_id = ?", [sandboxId]);
  }
}
