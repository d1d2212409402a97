import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/** Bytes queued on the WebSocket before the TCP side is paused. */
const HIGH_WATER = 1 << 20;

/** The control message that ends one direction (a TCP half-close). */
export const EOF_MESSAGE = JSON.stringify({ eof: true });

/**
 * Relays a TCP connection over a WebSocket: binary frames carry the bytes; a text frame
 * `{"eof":true}` is a half-close of its sender's direction; the WebSocket closes when the TCP
 * connection does (1000) or breaks (1011). Both directions apply backpressure.
 */
export function relayTcpOverWebSocket(ws: WebSocket, tcp: Duplex, onTraffic: () => void): void {
  let paused = false;
  tcp.on("data", (chunk: Buffer) => {
    onTraffic();
    ws.send(chunk, { binary: true }, () => {
      if (paused && ws.bufferedAmount < HIGH_WATER / 4) {
        paused = false;
        tcp.resume();
      }
    });
    if (ws.bufferedAmount > HIGH_WATER && !paused) {
      paused = true;
      tcp.pause();
    }
  });
  tcp.on("end", () => {
    if (ws.readyState === ws.OPEN) ws.send(EOF_MESSAGE);
  });
  tcp.on("close", () => ws.close(1000));
  tcp.on("error", () => ws.close(1011, "the connection in the sandbox broke"));
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    onTraffic();
    if (!isBinary) {
      if (isEof(data)) tcp.end();
      return;
    }
    if (!tcp.write(data)) {
      ws.pause();
      tcp.once("drain", () => ws.resume());
    }
  });
  ws.on("close", () => tcp.destroy());
  ws.on("error", () => tcp.destroy());
  tcp.resume();
}

function isEof(data: Buffer): boolean {
  try {
    return (JSON.parse(data.toString("utf8")) as { eof?: unknown }).eof === true;
  } catch {
    return false;
  }
}
