import { Agent, type ClientRequestArgs } from "node:http";
import type { Duplex } from "node:stream";

/** How long an idle keep-alive connection to a sandbox is kept (below Node's 5 s server default). */
const IDLE_MS = 4_000;
/** Idle connections kept per sandbox port. */
const MAX_IDLE = 32;

/**
 * An HTTP agent whose connections are `dial`s into one sandbox port (berth-init relays them),
 * kept alive and reused between requests like any TCP connection pool.
 */
class SandboxPortAgent extends Agent {
  constructor(private readonly dial: () => Promise<Duplex>) {
    super({ keepAlive: true, timeout: IDLE_MS, maxFreeSockets: MAX_IDLE, scheduling: "lifo" });
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    this.dial().then(
      (s) => {
        callback?.(null, s);
        // dial hands the stream over paused; the request attaches its parser first (the
        // request takes the socket in a tick queued before this resume runs), then bytes flow.
        s.resume();
      },
      (err: Error) => callback?.(err, undefined as never),
    );
    return undefined;
  }

  /** True when it holds no connection, busy or idle. */
  get empty(): boolean {
    return Object.keys(this.sockets).length === 0 && Object.keys(this.freeSockets).length === 0;
  }
}

/** One agent per sandbox port, made on first use; agents without connections are swept. */
export class AgentPool {
  private readonly agents = new Map<string, SandboxPortAgent>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly dial: (sandboxId: string, port: number) => Promise<Duplex>) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  get(sandboxId: string, port: number): Agent {
    const key = `${sandboxId}:${port}`;
    let a = this.agents.get(key);
    if (!a) {
      a = new SandboxPortAgent(() => this.dial(sandboxId, port));
      this.agents.set(key, a);
    }
    return a;
  }

  /** Closes the pooled connections of a port (or of every port of the sandbox). */
  drop(sandboxId: string, port?: number): void {
    for (const [key, a] of this.agents)
      if (port === undefined ? key.startsWith(`${sandboxId}:`) : key === `${sandboxId}:${port}`) {
        a.destroy();
        this.agents.delete(key);
      }
  }

  private sweep(): void {
    for (const [key, a] of this.agents)
      if (a.empty) {
        a.destroy();
        this.agents.delete(key);
      }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
