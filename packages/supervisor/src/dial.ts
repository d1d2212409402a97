import type { Duplex } from "node:stream";
import { InvalidRequestError } from "@berth/core";
import { invalidAnswer, parseAnswer } from "./connection.js";
import { errorFromErrno } from "./errors.js";
import { encodeFrame } from "./frames.js";

/** Largest reply frame dial accepts before the raw byte stream starts. */
const MAX_REPLY = 4096;

/**
 * `dial {port}`: asks berth-init for a TCP connection to `port` inside the sandbox. After its
 * one reply frame the socket carries the raw bytes of that connection, so it is returned as is
 * (any bytes that came with the reply pushed back in front).
 */
export async function dialPort(socket: Duplex, port: number): Promise<Duplex> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    socket.destroy();
    throw new InvalidRequestError("port must be 1..65535", { field: "port" });
  }
  socket.write(encodeFrame("q", { op: "dial", port }));
  return new Promise<Duplex>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const fail = (e: Error) => {
      cleanup();
      socket.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 5) return;
      const len = buf.readUInt32BE(1);
      if (buf[0] !== 0x72 /* r */ || len > MAX_REPLY) return fail(invalidAnswer());
      if (buf.length < 5 + len) return;
      cleanup();
      let a: Record<string, unknown>;
      try {
        a = parseAnswer({ type: "r", payload: buf.subarray(5, 5 + len) });
      } catch (e) {
        return fail(e as Error);
      }
      if (a.ok !== true) {
        const errno = typeof a.errno === "string" && /^E[A-Z0-9]{1,15}$/.test(a.errno) ? a.errno : undefined;
        return fail(errno ? errorFromErrno(errno, String(a.message ?? ""), String(port)) : invalidAnswer());
      }
      socket.pause();
      const rest = buf.subarray(5 + len);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onEnd = () => fail(invalidAnswer());
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("error", onEnd);
      socket.off("close", onEnd);
    };
    socket.on("data", onData);
    socket.on("error", onEnd);
    socket.on("close", onEnd);
  });
}
