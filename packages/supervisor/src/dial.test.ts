import { createServer, type Server } from "node:net";
import { BerthError } from "@berth/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InitUnderTest, startInit } from "./test-harness.js";

let init: InitUnderTest;
let echo: Server;
let port: number;

beforeAll(async () => {
  init = await startInit({ uid: 1000 });
  // An echo server that also reports how many bytes it saw when the client half-closes.
  echo = createServer((s) => {
    let n = 0;
    s.on("data", (d: Buffer) => {
      n += d.length;
      s.write(d);
    });
    s.on("end", () => s.end(`\nbytes=${n}`));
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  port = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await init?.stop();
  echo?.close();
});

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("dial", () => {
  it("relays bytes both ways and passes a half-close on", async () => {
    const s = await init.client.dial(port);
    s.write("hello");
    s.end();
    expect((await readAll(s)).toString()).toBe("hello\nbytes=5");
  });

  it("moves megabytes without loss", async () => {
    const s = await init.client.dial(port);
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    const got = readAll(s);
    s.end(big);
    const out = await got;
    expect(out.length).toBe(big.length + "\nbytes=5242880".length);
    expect(out.subarray(0, big.length).equals(big)).toBe(true);
  });

  it("answers ECONNREFUSED when nothing listens, and refuses bad ports", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const free = (closed.address() as { port: number }).port;
    closed.close();
    const err = await init.client.dial(free).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).details?.errno).toBe("ECONNREFUSED");
    await expect(init.client.dial(0)).rejects.toMatchObject({ code: "invalid_request" });
    await expect(init.client.dial(70000)).rejects.toMatchObject({ code: "invalid_request" });
  });
});
