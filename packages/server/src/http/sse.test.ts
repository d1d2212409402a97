import { ConflictError, SandboxError } from "@berth/core";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventStream } from "./sse.js";

// SSE error events are built in one place: a BerthError keeps its registered code, anything
// else becomes the route's fallback, so no internal message or invented code reaches a client.
const app = Fastify();
app.get("/berth-error", async (req, reply) => {
  const s = openEventStream(req, reply);
  s.sendError(
    new ConflictError("the sandbox is paused", { state: "paused" }),
    (e) => new SandboxError(e.message),
    7,
  );
  s.end();
});
app.get("/other-error", async (req, reply) => {
  const s = openEventStream(req, reply);
  s.sendError(new Error("ENOENT /var/lib/berth/secret"), () => new SandboxError("the watch failed"));
  s.end();
});
let base = "";
beforeAll(async () => {
  base = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(() => app.close());

const events = async (path: string) => {
  const text = await (await fetch(base + path, { headers: { accept: "text/event-stream" } })).text();
  return text.split("\n\n").filter((b) => b.trim() && !b.startsWith(":"));
};

describe("EventStream.sendError", () => {
  it("sends a BerthError as the contract's error body with its own code", async () => {
    expect(await events("/berth-error")).toEqual([
      'id: 7\nevent: error\ndata: {"error":{"code":"conflict","message":"the sandbox is paused","details":{"state":"paused"}}}',
    ]);
  });

  it("sends any other error as the fallback the route gives, not its message", async () => {
    expect(await events("/other-error")).toEqual([
      'event: error\ndata: {"error":{"code":"sandbox_error","message":"the watch failed"}}',
    ]);
  });
});
