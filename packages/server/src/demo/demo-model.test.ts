import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerDemo, DEMO_COMMAND, DEMO_PREFIX, demoTurn, isDemoRequest } from "./demo-model.js";

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    answerDemo(req.url ?? "", Buffer.concat(chunks), res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("the demo model", () => {
  it("is chosen only by its own model name", () => {
    expect(isDemoRequest(Buffer.from('{"model":"berth-demo","messages":[]}'))).toBe(true);
    expect(isDemoRequest(Buffer.from('{"model":"claude-sonnet-4-5","messages":[]}'))).toBe(false);
    expect(isDemoRequest(Buffer.from("not json"))).toBe(false);
  });

  it("answers a prompt with a Bash call, and that call's result with its output; every reply is labelled", () => {
    const tools = [{ name: "Bash" }, { name: "Read" }];
    const first = demoTurn({ messages: [{ role: "user", content: "hi" }], tools });
    expect(first.stop).toBe("tool_use");
    expect(first.content[0]).toMatchObject({ type: "text" });
    expect((first.content[0] as { text: string }).text.startsWith(DEMO_PREFIX)).toBe(true);
    expect(first.content[1]).toMatchObject({
      type: "tool_use",
      name: "Bash",
      input: { command: DEMO_COMMAND },
    });
    const second = demoTurn({
      messages: [{ role: "user", content: [{ type: "tool_result", content: "hello from sb1 as uid 1000" }] }],
      tools,
    });
    expect(second.stop).toBe("end_turn");
    expect((second.content[0] as { text: string }).text).toMatch(
      /^\[berth-demo: a scripted demo model, not Claude\] .*printed:\nhello from sb1 as uid 1000\n/s,
    );
    // A side request with no tools gets text only.
    expect(demoTurn({ messages: [{ role: "user", content: "title?" }] }).stop).toBe("end_turn");
  });

  it("streams server-sent events in the Messages API's order, with zero usage", async () => {
    const r = await fetch(`${url}/v1/messages`, {
      method: "POST",
      body: JSON.stringify({
        model: "berth-demo",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
        tools: [{ name: "Bash" }],
      }),
    });
    expect(r.headers.get("content-type")).toBe("text/event-stream");
    const events = [...(await r.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(events).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const whole = await (
      await fetch(`${url}/v1/messages`, {
        method: "POST",
        body: JSON.stringify({ model: "berth-demo", messages: [{ role: "user", content: "hi" }] }),
      })
    ).json();
    expect(whole).toMatchObject({ model: "berth-demo", usage: { input_tokens: 0, output_tokens: 0 } });
  });
});
