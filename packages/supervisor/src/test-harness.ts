// Test support (not built): runs the real berth-init on the host, bound to a temp socket.
import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { SupervisorClient } from "./client.js";
import { initBinaryPath } from "./init-binary.js";
import type { ProcessStream } from "./process-stream.js";

/** One berth-init under test, its temp dir and a client. */
export interface InitUnderTest {
  dir: string;
  socket: string;
  state: string;
  /** A scratch dir the init's user may write. */
  work: string;
  proc: ChildProcess;
  client: SupervisorClient;
  connect: () => Promise<Duplex>;
  stop(): Promise<void>;
}

/** Starts berth-init (as `uid` via setpriv when given) and waits until it answers. */
export async function startInit(o: { uid?: number } = {}): Promise<InitUnderTest> {
  const dir = mkdtempSync("/tmp/berth-sup-");
  const socket = join(dir, "init.sock");
  const state = join(dir, "state");
  const work = join(dir, "work");
  mkdirSync(work);
  const argv =
    o.uid === undefined
      ? [initBinaryPath()]
      : ["setpriv", `--reuid=${o.uid}`, `--regid=${o.uid}`, "--clear-groups", initBinaryPath()];
  if (o.uid !== undefined) {
    chownSync(dir, o.uid, o.uid);
    chownSync(work, o.uid, o.uid);
  }
  const proc = spawn(argv[0]!, argv.slice(1), {
    env: { BERTH_LISTEN_PATH: socket, BERTH_STATE_DIR: state, PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const connect = () =>
    new Promise<Duplex>((resolve, reject) => {
      const s = net.connect(socket);
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const client = new SupervisorClient(connect);
  for (let i = 0; ; i++) {
    if (
      existsSync(socket) &&
      (await client.ping().then(
        () => true,
        () => false,
      ))
    )
      break;
    if (i > 200 || proc.exitCode !== null) {
      await stop();
      throw new Error("berth-init did not start");
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { dir, socket, state, work, proc, client, connect, stop };
}

/** Everything a process stream produced, once it exits. */
export function collect(p: ProcessStream) {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  p.on("stdout", (b: Buffer) => stdout.push(b));
  p.on("stderr", (b: Buffer) => stderr.push(b));
  return new Promise<{
    stdout: string;
    stderr: string;
    out: Buffer;
    exitCode: number | null;
    signal: string | null;
  }>((resolve, reject) => {
    p.on("error", reject);
    p.on("exit", (e: { exitCode: number | null; signal: string | null }) => {
      const out = Buffer.concat(stdout);
      resolve({ stdout: out.toString(), stderr: Buffer.concat(stderr).toString(), out, ...e });
    });
  });
}

/** Whether a pid is alive (zombies count as dead). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** Polls `check` until true or the deadline (a generous one: timings are not what is tested). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
