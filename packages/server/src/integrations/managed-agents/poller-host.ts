import type { ManagedAgentRecord } from "@berth/core";
import { controlPlaneClient, sessionsTokenOf, stopWorkItem } from "./control-plane.js";
import { type ClaimedItem, ItemRun, type ItemRunDeps } from "./item-run.js";

/**
 * Claims an integration's work on the host with the official SDK's poller and runs each item in
 * its own sandbox (ItemRun). At most `maxConcurrent` items run at once: the poller is not asked
 * for the next item until one ends, so the rest wait in the control plane's queue, unclaimed.
 */
export class PollerHost {
  private readonly abort = new AbortController();
  /** By run, not work id: an item whose lease was lost may be claimed again while its old worker ends. */
  private readonly running = new Set<ItemRun>();
  private slotFreed: (() => void) | null = null;
  /** Webhook mode: a pass over the queue is due (a webhook came meanwhile), and who waits for it. */
  private claimDue = true;
  private claimWaiter: (() => void) | null = null;
  /** Settles when the poll loop has ended (aborted, or refused for good). */
  readonly polling: Promise<void>;

  constructor(
    private readonly d: ItemRunDeps & { replica: string },
    private readonly integration: ManagedAgentRecord,
    private readonly environmentKey: string,
    /** Webhook mode: claim what is queued when `claimNow` is called (and once at start), never long-poll. */
    private readonly onWebhook: boolean,
    /** Called when the control plane refuses the poll for good (a bad key, a deleted environment). */
    private readonly onFatal: (message: string) => void,
  ) {
    this.polling = this.poll();
  }

  /** The items running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Webhook mode: claims what the queue holds now (after the pass running, if one is). */
  claimNow(): void {
    this.claimDue = true;
    this.claimWaiter?.();
  }

  /** Stops claiming; running items go on (`force`: they are stopped). Settles when all have ended. */
  async drain(o: { force?: boolean; why?: "forced" | "shutdown" } = {}): Promise<void> {
    this.abort.abort();
    this.slotFreed?.();
    this.claimWaiter?.();
    if (o.force) for (const run of this.running) run.stop(o.why ?? "forced");
    await this.polling;
    await Promise.all([...this.running].map((r) => r.done));
  }

  private async poll(): Promise<void> {
    try {
      if (!this.onWebhook) return await this.claim(false);
      while (!this.abort.signal.aborted) {
        this.claimDue = false;
        await this.claim(true);
        await this.nextClaim();
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      const message = `the control plane refused to hand out work: ${String((err as Error).message ?? err)}`;
      this.d.log.warn(
        { integration: this.integration.id, err: String(err) },
        "managed agents: polling stopped",
      );
      this.onFatal(message);
    }
  }

  /** Claims and starts items: until aborted, or (`drain`) until the queue is empty. */
  private async claim(drain: boolean): Promise<void> {
    const ig = this.integration;
    const poller = (await controlPlaneClient(ig.baseUrl)).beta.environments.work.poller({
      environmentId: ig.environmentId,
      environmentKey: this.environmentKey,
      workerId: `berth-${this.d.replica}-${ig.id}`,
      signal: this.abort.signal,
      // Each item's worker stops its own item (or ItemRun does, when the worker could not).
      autoStop: false,
      ...(drain ? { drain: true, blockMs: null } : {}),
    });
    for await (const work of poller) {
      const item: ClaimedItem = {
        workId: work.id,
        environmentId: work.environment_id,
        sessionId: work.data.type === "session" ? work.data.id : "",
        sessionsToken: await sessionsTokenOf(work.secret),
      };
      if (work.data.type !== "session") {
        // A health check: claiming it shows the environment has a worker; nothing runs.
        await stopWorkItem(ig.baseUrl, item.sessionsToken ?? this.environmentKey, item, this.d.log);
        continue;
      }
      const run = new ItemRun(this.d, ig, item, this.environmentKey);
      this.running.add(run);
      void run.done.finally(() => {
        this.running.delete(run);
        this.slotFreed?.();
      });
      await this.freeSlot();
    }
  }

  /** Webhook mode: waits for the next webhook (or one that came during the last pass), or abort. */
  private async nextClaim(): Promise<void> {
    while (!this.claimDue && !this.abort.signal.aborted)
      await new Promise<void>((resolve) => {
        this.claimWaiter = resolve;
      });
    this.claimWaiter = null;
  }

  /** Waits until fewer than `maxConcurrent` items run (or polling is aborted). */
  private async freeSlot(): Promise<void> {
    while (this.running.size >= this.integration.maxConcurrent && !this.abort.signal.aborted)
      await new Promise<void>((resolve) => {
        this.slotFreed = resolve;
      });
    this.slotFreed = null;
  }
}
