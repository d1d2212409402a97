import { Duplex } from "node:stream";
import type { ExposedPort as ExposedPortSchema, Port } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type WebSocket from "ws";
import type { BerthClient, CallOptions } from "./client.js";

/**
 * An exposed port of a sandbox; `url` is where the server's proxy serves it (a preview host when
 * the server has a preview domain).
 */
export type PortInfo = Static<typeof Port>;

/**
 * What `expose` answers: the port and, for a non-public port, its token (shown only now); send
 * it as `X-Berth-Token`, `?token=` or the cookie the first `?token=` request sets.
 */
export type ExposedPort = Static<typeof ExposedPortSchema>;

/** The text frame that half-closes one direction of a port-forward connection. */
const EOF_MESSAGE = JSON.stringify({ eof: true });

/** Ports of one sandbox (`sb.ports`): expose them through the server's proxy, or connect to them. */
export class Ports {
  constructor(
    private readonly client: BerthClient,
    private readonly sandboxId: string,
  ) {}

  private path(suffix = ""): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/ports${suffix}`;
  }

  /**
   * Exposes `port` at a URL. A non-public port needs the returned token; exposing it again
   * makes a new token (the old one stops working).
   */
  expose(port: number, opts: { public?: boolean } & CallOptions = {}): Promise<ExposedPort> {
    return this.client.json("POST", this.path(), {
      json: { port, public: opts.public ?? false },
      signal: opts.signal,
    });
  }

  /** The exposed ports (without tokens). */
  async list(o: CallOptions = {}): Promise<PortInfo[]> {
    return (await this.client.json<{ items: PortInfo[] }>("GET", this.path(), { signal: o.signal })).items;
  }

  /** Unexposes a port; its URL answers 404 from now on. */
  async remove(port: number, o: CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", this.path(`/${port}`), { signal: o.signal });
  }

  /**
   * A raw TCP connection to `port` inside the sandbox (exposed or not), over a WebSocket: a
   * Duplex of the connection's bytes. Rejects with BadGatewayError when nothing listens there.
   */
  async connect(port: number, o: CallOptions = {}): Promise<Duplex> {
    return tcpStream(await this.client.websocket(this.path(`/${port}/connect`), undefined, o.signal));
  }
}

/** The bytes of a port-forward WebSocket as a Duplex; `end()` half-closes like a TCP socket. */
function tcpStream(ws: WebSocket): Duplex {
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      if (ws.isPaused) ws.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      if (ws.readyState !== ws.OPEN) return done(new Error("the port-forward connection is closed"));
      ws.send(chunk, { binary: true }, done);
    },
    final(done) {
      if (ws.readyState !== ws.OPEN) return done();
      ws.send(EOF_MESSAGE, { binary: false }, done);
    },
    destroy(err, done) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(err ? 1011 : 1000);
      done(err);
    },
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      if (!stream.push(data)) ws.pause();
    } else if (data.toString("utf8") === EOF_MESSAGE) stream.push(null);
  });
  ws.on("close", () => {
    stream.push(null);
    if (stream.writableFinished) return;
    // Nothing more can be written once the other side is gone; what was read is still delivered.
    if (stream.readableEnded) stream.destroy();
    else stream.once("end", () => stream.destroy());
  });
  ws.on("error", (err) => stream.destroy(err));
  return stream;
}
