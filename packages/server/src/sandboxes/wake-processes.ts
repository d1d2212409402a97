import type { Logger, SandboxRecord, Store } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import type { EventHub } from "../events/event-log.js";

/**
 * Processes started with `restart: "on-wake"`: the ones still running when a sandbox hibernates
 * are started again, with the same command, cwd and env, when it wakes.
 */
export class WakeProcesses {
  constructor(
    private readonly d: {
      store: Store;
      events: EventHub;
      log: Logger;
      client: (id: string) => SupervisorClient;
      processEnv: (sandbox: SandboxRecord, extra?: Record<string, string>) => Record<string, string>;
    },
  ) {}

  /** Before a hibernate: processes that already ended do not come back on wake. */
  async forgetEnded(id: string): Promise<void> {
    const wanted = await this.d.store.listWakeProcesses(id);
    if (wanted.length === 0) return;
    const running = new Set(
      (await this.d.client(id).processes()).filter((p) => p.state === "running").map((p) => p.pid),
    );
    for (const w of wanted) if (!running.has(w.pid)) await this.d.store.deleteWakeProcess(id, w.pid);
  }

  /** After a wake: starts them again (recorded under their new pids); a failure is an event, not an error. */
  async restart(id: string): Promise<void> {
    const wanted = await this.d.store.listWakeProcesses(id);
    const sandbox = wanted.length > 0 ? await this.d.store.getSandbox(id) : null;
    if (!sandbox) return;
    for (const w of wanted) {
      try {
        const { pid } = await this.d.client(id).spawn({
          cmd: w.cmd,
          cwd: w.cwd ?? undefined,
          env: this.d.processEnv(sandbox, w.env),
        });
        await this.d.store.transaction(async (tx) => {
          await tx.deleteWakeProcess(id, w.pid);
          await tx.saveWakeProcess({ ...w, pid });
        });
      } catch (err) {
        this.d.log.warn(
          { sandboxId: id, cmd: w.cmd, err: String(err) },
          "could not restart a process on wake",
        );
        void this.d.events
          .append(id, "restart_failed", { cmd: w.cmd, error: (err as Error).message })
          .catch(() => {});
      }
    }
  }
}
