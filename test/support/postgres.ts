/**
 * A throwaway PostgreSQL server from Debian's packages for tests: its own directory, a free
 * loopback port, trust auth, run as the `postgres` user (initdb refuses root).
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

function binDir(): string {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, "bin", "initdb"))) return join(base, v, "bin");
  throw new Error(
    "PostgreSQL is not installed: run `node scripts/bootstrap.mjs --test` (it apt-installs postgresql)",
  );
}

const asPostgres = (cmd: string, args: string[]) => ["-u", "postgres", "--", cmd, ...args];

export async function startPostgres(): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "berth-pg-"));
  chmodSync(dir, 0o755);
  execFileSync("chown", ["postgres:postgres", dir]);
  const data = join(dir, "data");
  execFileSync(
    "runuser",
    asPostgres(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]),
    {
      stdio: "ignore",
    },
  );
  const port = await freePort();
  const server = spawn(
    "runuser",
    asPostgres(join(bin, "postgres"), [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-h",
      "127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
    ]),
    { stdio: "ignore", detached: false },
  );
  const stop = async () => {
    // runuser does not pass signals on reliably: pg_ctl stops the postmaster itself.
    try {
      execFileSync(
        "runuser",
        asPostgres(join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"]),
        {
          stdio: "ignore",
        },
      );
    } catch {
      server.kill("SIGKILL");
    }
    await new Promise((r) => (server.exitCode !== null ? r(null) : server.once("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  };
  // Wait until it accepts connections, then make the database.
  for (let i = 0; ; i++) {
    try {
      execFileSync(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      break;
    } catch {
      if (i > 100 || server.exitCode !== null) {
        await stop();
        throw new Error("PostgreSQL did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  execFileSync(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "berth"]);
  return { url: `postgres://postgres@127.0.0.1:${port}/berth`, stop };
}
