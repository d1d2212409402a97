import { randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import type { Logger } from "@berth/core";
import { run, tryRun } from "@berth/linux-host";
import type { SandboxPaths } from "./paths.js";
import { listenForSandbox } from "./socket.js";

/**
 * The OCI runtime binary (runc or crun, picked at start) as the driver calls it: every call
 * with this instance's `--root`, so several servers on one host never see each other's containers.
 */
export class OciCli {
  /** `runc` until `start` picks the binary. */
  name = "runc";

  constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  /** Whether the runtime holds a container `id` (running, paused or stopped). */
  has(id: string): boolean {
    return existsSync(`${this.root}/${id}`);
  }

  /**
   * `run -d` of the bundle at `p.dir` with a fresh supervisor socket passed as fd 3; its output
   * goes to a file (the init inherits it and outlives the command).
   */
  async runDetached(id: string, p: SandboxPaths, signal?: AbortSignal): Promise<void> {
    // Every start is a boot: the sandbox reads a new boot id (bound by the spec's hook).
    writeFileSync(p.bootId, `${randomUUID()}\n`, { mode: 0o444 });
    const sock = await listenForSandbox(p.socket);
    try {
      await run(
        this.name,
        [
          "--root",
          this.root,
          "run",
          "-d",
          "--preserve-fds",
          "1",
          "--pid-file",
          p.pidFile,
          "--bundle",
          p.dir,
          id,
        ],
        { log: this.log, signal, timeoutMs: 30_000, outputFile: p.output, extraFds: [sock.fd] },
      );
    } finally {
      await sock.close();
    }
  }

  /** Kills every process and deletes the container (best effort: it may be half gone already). */
  async killAndDelete(id: string): Promise<void> {
    // delete --force SIGKILLs the init; the pid namespace takes every other process with it.
    const root = ["--root", this.root];
    await tryRun(this.name, [...root, "kill", "-a", id, "KILL"], { log: this.log, timeoutMs: 10_000 });
    await tryRun(this.name, [...root, "delete", "--force", id], { log: this.log, timeoutMs: 30_000 });
  }

  /** The runtime's word on a container: `running`, `paused` or `stopped`; throws when it has none. */
  async state(id: string): Promise<"running" | "paused" | "stopped"> {
    const { stdout } = await run(this.name, ["--root", this.root, "state", id], {
      log: this.log,
      timeoutMs: 10_000,
    });
    const status = (JSON.parse(stdout) as { status?: string }).status;
    return status === "running" ? "running" : status === "paused" ? "paused" : "stopped";
  }
}
