import { Agent, type ClientRequestArgs } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";

/** How long an idle keep-alive connection to a sandbox is kept (below Node's 5 s server default). */
const IDLE_MS = 4_000;
/** Idle connections kept per sandbox port. */
const MAX_IDLE = 32;

/** Ways into a sandbox port: TCP to its address (when it has one), or berth-init's relay. */
export interface PortRoads {
  /** The sandbox's address on its network, or null. */
  address(sandboxId: string): string | null;
  /** A connection relayed by berth-init to the port on the sandbox's loopback. */
  dial(sandboxId: string, port: number): Promise<Duplex>;
}

/** A TCP connection to `ip:port`, once connected. */
function connectTcp(ip: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port, noDelay: true });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/**
 * An HTTP agent for one sandbox port, kept alive and reused between requests like any TCP
 * connection pool. Connections go straight to the sandbox's address when the app listens
 * there (about 45% more requests per second than the relay here); an app bound to 127.0.0.1
 * refuses that, and from then on its connections are `dial`s that berth-init relays.
 */
class SandboxPortAgent extends Agent {
  private viaRelay = false;

  constructor(
    private readonly roads: PortRoads,
    private readonly sandboxId: string,
    private readonly port: number,
  ) {
    super({ keepAlive: true, timeout: IDLE_MS, maxFreeSockets: MAX_IDLE, scheduling: "lifo" });
  }

  private async open(): Promise<Duplex> {
    const ip = this.viaRelay ? null : this.roads.address(this.sandboxId);
    if (ip)
      try {
        return await connectTcp(ip, this.port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ECONNREFUSED") throw err;
        this.viaRelay = true;
      }
    return this.roads.dial(this.sandboxId, this.port);
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    this.open().then(
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

  constructor(private readonly roads: PortRoads) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  get(sandboxId: string, port: number): Agent {
    const key = `${sandboxId}:${port}`;
    let a = this.agents.get(key);
    if (!a) {
      a = new SandboxPortAgent(this.roads, sandboxId, port);
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
