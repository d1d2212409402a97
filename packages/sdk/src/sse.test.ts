import { describe, expect, it } from "vitest";
import { SseParser } from "./sse.js";

describe("SseParser", () => {
  it("joins multi-line data with newlines and names the event", () => {
    const p = new SseParser();
    const evs = p.push('event: stdout\ndata: {"data":\ndata: "x"}\n\n');
    expect(evs).toEqual([{ event: "stdout", data: '{"data":\n"x"}', id: undefined }]);
  });

  it("defaults the event type to message and strips one leading space only", () => {
    const p = new SseParser();
    expect(p.push("data:  two spaces\n\ndata:none\n\n")).toEqual([
      { event: "message", data: " two spaces", id: undefined },
      { event: "message", data: "none", id: undefined },
    ]);
  });

  it("keeps the last event id across events for a reconnect, and ignores ids with NUL", () => {
    const p = new SseParser();
    const evs = p.push("id: 1\ndata: a\n\ndata: b\n\nid: 3\ndata: c\n\nid: x\0y\ndata: d\n\n");
    expect(evs.map((e) => [e.data, e.id])).toEqual([
      ["a", "1"],
      ["b", "1"],
      ["c", "3"],
      ["d", "3"],
    ]);
    expect(p.lastEventId).toBe("3");
  });

  it("starts from a given Last-Event-ID and lets an empty id reset it", () => {
    const p = new SseParser("41");
    expect(p.push("data: a\n\n")[0]?.id).toBe("41");
    expect(p.push("id\ndata: b\n\n")[0]?.id).toBe("");
  });

  it("handles events, lines and CRLF pairs split across chunks", () => {
    const text =
      'id: 7\r\nevent: exit\r\ndata: {"exitCode": 3}\r\n\r\n: comment\r\nevent: stdout\rdata: z\r\r';
    const whole = new SseParser().push(text);
    expect(whole).toHaveLength(2);
    for (let cut = 0; cut <= text.length; cut++) {
      const q = new SseParser();
      const evs = [...q.push(text.slice(0, cut)), ...q.push(text.slice(cut))];
      expect(evs, `cut at ${cut}`).toEqual(whole);
    }
    expect(whole[0]).toEqual({ event: "exit", data: '{"exitCode": 3}', id: "7" });
    expect(whole[1]).toEqual({ event: "stdout", data: "z", id: "7" });
  });

  it("does not dispatch comments, events without data, or an unterminated event", () => {
    const p = new SseParser();
    expect(p.push(": keepalive\n\nevent: foo\n\ndata: partial")).toEqual([]);
    p.end();
    expect(p.push("\n")).toEqual([]);
  });

  it("does not move the resume point for an event cut off before its blank line", () => {
    const p = new SseParser();
    expect(p.push("id: 1\ndata: a\n\nid: 2\ndata: b")).toHaveLength(1);
    expect(p.lastEventId).toBe("1");
    p.push("\n\n");
    expect(p.lastEventId).toBe("2");
  });

  it("records the retry delay the server asks for", () => {
    const p = new SseParser();
    p.push("retry: 1500\nretry: abc\n\n");
    expect(p.retryMs).toBe(1500);
  });
});
