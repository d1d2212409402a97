/**
 * One TCP connection into a pod through the API server's port-forward (the WebSocket form of
 * `pods/portforward`, subprotocol `v4.channel.k8s.io`), as a Duplex. Every frame is a channel
 * byte then data: channel 0 carries the port's bytes, channel 1 its errors; the first frame of
 * each channel is the port number (2 bytes, little-endian), which is skipped.
 */
import { Duplex } from "node:stream";
import { SandboxError } from "@berth/core";
import type { KubeConfig } from "@kubernetes/client-node";
import WebSocket from "ws";

export const PORT_FORWARD_PROTOCOL = "v4.channel.k8s.io";

/**
 * Opens a stream to `port` on the pod's loopback; rejects when the API server refuses, or has not
 * upgraded the connection in `timeoutMs`.
 */
export async function portForward(
  kc: KubeConfig,
  namespace: string,
  pod: string,
  port: number,
  timeoutMs: number,
): Promise<Duplex> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new SandboxError("kubernetes: the kubeconfig names no cluster");
  const url = new URL(
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward?ports=${port}`,
    server.replace(/^http/, "ws"),
  );
  const opts: WebSocket.ClientOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const ws = new WebSocket(url, [PORT_FORWARD_PROTOCOL], {
    ...opts,
    perMessageDeflate: false,
    handshakeTimeout: timeoutMs,
  });
  // Listening from the start: the port-number frames can come in the same read as the handshake.
  const stream = new PortForwardStream(ws);
  // Until it opens, a failure is this function's rejection, not an error event nobody listens to.
  const untilOpen = () => {};
  stream.on("error", untilOpen);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) =>
      reject(new SandboxError(`kubernetes: port-forward to pod ${pod} refused (status ${res.statusCode})`)),
    );
    ws.once("error", (err) =>
      reject(new SandboxError(`kubernetes: port-forward to pod ${pod}: ${err.message}`)),
    );
  }).catch((err) => {
    stream.destroy();
    throw err;
  });
  stream.off("error", untilOpen);
  return stream;
}

/** The Duplex over one port-forward WebSocket (no half-close: ending it closes the socket). */
class PortForwardStream extends Duplex {
  private readonly headerSeen = [false, false];
  private errorText = "";

  constructor(private readonly ws: WebSocket) {
    super();
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length < 1) return;
      const channel = data[0]!;
      let body = data.subarray(1);
      if (channel > 1) return;
      if (!this.headerSeen[channel]) {
        this.headerSeen[channel] = true;
        body = body.subarray(2);
      }
      if (channel === 0) {
        if (body.length > 0 && !this.push(Buffer.from(body))) ws.pause();
      } else this.errorText += body.toString("utf8");
    });
    ws.once("close", () => {
      if (this.errorText) this.destroy(new SandboxError(`kubernetes port-forward: ${this.errorText.trim()}`));
      else this.push(null);
    });
    ws.once("error", (err) => this.destroy(err));
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) done(new SandboxError("port-forward closed"));
    else this.ws.send(Buffer.concat([Buffer.from([0]), chunk]), { binary: true }, done);
  }

  override _final(done: () => void): void {
    this.ws.close(1000);
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.terminate();
    done(err);
  }
}
