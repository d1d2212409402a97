import { describe, expect, it } from "vitest";
import { type RequestEvent, RequestStream } from "./http-requests.js";

/** Feeds `parts` one by one; returns the hosts of the heads, "bad: why" entries and the byte count. */
function run(...parts: string[]): { hosts: (string | null)[]; bad: string[]; bytes: number } {
  const r = new RequestStream();
  const events: RequestEvent[] = parts.flatMap((p) => r.push(Buffer.from(p, "latin1")));
  return {
    hosts: events.flatMap((e) => (e.type === "head" ? [e.head.host] : [])),
    bad: events.flatMap((e) => (e.type === "bad" ? [e.why] : [])),
    bytes: events.reduce((n, e) => n + (e.type === "bad" ? 0 : e.bytes.length), 0),
  };
}

describe("the requests of a kept-alive HTTP/1 stream", () => {
  it("finds every request's Host across bodies, chunks and pipelining, split anywhere", () => {
    const stream =
      "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" +
      "POST /x HTTP/1.1\r\nHost: A.TEST:8080\r\nContent-Length: 5\r\n\r\nHost:" +
      "POST /y HTTP/1.1\r\nhost: b.test.\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nGET\r\n0\r\nT: v\r\n\r\n" +
      "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n";
    expect(run(stream)).toEqual({
      hosts: ["a.test", "a.test", "b.test", "::1"],
      bad: [],
      bytes: stream.length,
    });
    // Byte by byte: the same.
    expect(run(...stream.split(""))).toEqual({
      hosts: ["a.test", "a.test", "b.test", "::1"],
      bad: [],
      bytes: stream.length,
    });
  });

  it("refuses what a server could read two ways", () => {
    for (const [head, why] of [
      ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /more than one Host/],
      ["GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", /both/],
      ["GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", /Content-Length/],
      ["GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", /other than chunked/],
      ["GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /folded/],
      ["GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", /bare CR, LF/],
      ["GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", /another host/],
      ["CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n", /CONNECT/],
      ["\x16\x03\x01 not http\r\n\r\n", /request line/],
    ] as const)
      expect(run(head).bad, head).toEqual([expect.stringMatching(why)]);
    expect(run("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").bad).toEqual([
      "a bad chunk size",
    ]);
    expect(run(`GET /${"a".repeat(20_000)}`).bad).toEqual(["a request head too large"]);
  });

  it("passes an upgraded connection's frames through, but parses a request sent instead", () => {
    const upgrade = "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    // A masked WebSocket frame, then bytes that would look like a request inside the tunnel.
    const frame = "\x81\x85abcdHost: b.test\r\n\r\n";
    expect(run(upgrade, frame)).toEqual({ hosts: ["a.test"], bad: [], bytes: upgrade.length + frame.length });
    // The server did not upgrade and the client sends another request: it is checked.
    expect(run(upgrade, "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n").hosts).toEqual(["a.test", "b.test"]);
  });
});
