import { CreateSandboxBody, CreateSessionBody, ExecBody, ListSandboxesQuery } from "@berth/core/contract";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installErrorHandling } from "./errors.js";
import { AJV_OPTIONS } from "./validation.js";

// A Fastify app with the API's validator options and error handling, and routes with the
// contract's schemas: what a client is told for each kind of bad input.
const app = Fastify({ ajv: { customOptions: AJV_OPTIONS } }).withTypeProvider<TypeBoxTypeProvider>();
installErrorHandling(app);
app.post("/sandboxes", { schema: { body: CreateSandboxBody } }, async () => ({ ok: true }));
app.post("/sessions", { schema: { body: CreateSessionBody } }, async () => ({ ok: true }));
app.post("/exec", { schema: { body: ExecBody } }, async () => ({ ok: true }));
app.get("/list", { schema: { querystring: ListSandboxesQuery } }, async () => ({ ok: true }));

beforeAll(() => app.ready());
afterAll(() => app.close());

async function refusal(method: "GET" | "POST", url: string, payload?: unknown) {
  const r = await app.inject({ method, url, payload: payload as object });
  expect(r.statusCode, r.body).toBe(400);
  const body = r.json() as { error: { code: string; message: string; details?: { field?: string } } };
  expect(body.error.code).toBe("invalid_request");
  return { message: body.error.message, field: body.error.details?.field };
}

describe("validation messages name the field and say what to send", () => {
  it("an enum lists its allowed values", async () => {
    expect(await refusal("POST", "/sandboxes", { network: { egress: "everything" } })).toEqual({
      message: "network.egress must be one of none, allowlist, open",
      field: "network.egress",
    });
    expect((await refusal("POST", "/sandboxes", { idle: { afterSeconds: 5, action: "nap" } })).message).toBe(
      "idle.action must be one of pause, hibernate, delete",
    );
    expect((await refusal("GET", "/list?state=asleep")).message).toBe(
      "querystring state must be one of starting, running, paused, hibernated, stopped, failed, deleted",
    );
  });

  it("an enum inside a union of objects is reported where it failed, not at the union", async () => {
    const r = await refusal("POST", "/sessions", { prompt: "hi", sandbox: { network: { egress: "all" } } });
    expect(r).toEqual({
      message: "sandbox.network.egress must be one of none, allowlist, open",
      field: "sandbox.network.egress",
    });
    expect(
      (await refusal("POST", "/sessions", { prompt: "hi", agent: { permissionMode: "yolo" } })).message,
    ).toBe("agent.permissionMode must be one of default, acceptEdits, bypassPermissions, plan");
  });

  it("an unknown field lists the known ones", async () => {
    const r = await refusal("POST", "/sandboxes", { resources: { cpu: 1 } });
    expect(r).toEqual({
      message: "resources.cpu is not a known field (known: cpus, memoryMiB, diskMiB, pids)",
      field: "resources.cpu",
    });
  });

  it("types, bounds, lengths and required fields say what is expected", async () => {
    expect(await refusal("POST", "/sandboxes", { resources: { cpus: "2" } })).toEqual({
      message: "resources.cpus must be a number (not a string)",
      field: "resources.cpus",
    });
    expect((await refusal("POST", "/sandboxes", { resources: { memoryMiB: 1 } })).message).toBe(
      "resources.memoryMiB must be at least 16",
    );
    expect((await refusal("POST", "/sandboxes", { timeoutSeconds: 1.5 })).message).toBe(
      "timeoutSeconds must be an integer (not a number)",
    );
    expect(await refusal("POST", "/exec", {})).toEqual({ message: "cmd is required", field: "cmd" });
    expect((await refusal("POST", "/exec", { cmd: [] })).message).toBe("cmd must have at least 1 item");
    expect((await refusal("POST", "/exec", { cmd: "ls" })).message).toBe(
      "cmd must be an array (not a string)",
    );
    expect((await refusal("POST", "/sessions", { prompt: "" })).message).toBe("prompt must not be empty");
  });

  it("patterns are explained in words, not as regular expressions", async () => {
    expect(await refusal("POST", "/exec", { cmd: ["ls"], cwd: "relative" })).toEqual({
      message: "cwd must be an absolute path without control characters",
      field: "cwd",
    });
    expect((await refusal("POST", "/sandboxes", { env: { "1X": "y" } })).message).toBe(
      "env.1X is not allowed: a key must be a variable name (letters, digits and _, not starting with a digit)",
    );
  });

  it("every pattern in the contract has its meaning in words", async () => {
    const contract = await import("@berth/core/contract");
    const patterns = new Set<string>();
    const walk = (v: unknown): void => {
      if (!v || typeof v !== "object") return;
      const p = (v as { pattern?: unknown }).pattern;
      if (typeof p === "string") patterns.add(p);
      // Records keep their key schema under patternProperties.
      for (const k of Object.keys((v as { patternProperties?: object }).patternProperties ?? {}))
        patterns.add(k);
      for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k]);
    };
    for (const value of Object.values(contract)) walk(value);
    // `^(.*)$` is a record's any-key pattern (response maps): nothing can fail it.
    patterns.delete("^(.*)$");
    expect([...patterns].filter((p) => !contract.PATTERN_MEANINGS[p])).toEqual([]);
    expect((await refusal("GET", "/list?label=nolabel")).message).toBe("querystring label must be key=value");
  });

  it("a body that is not an object says so", async () => {
    expect((await refusal("POST", "/exec", [1, 2])).message).toBe(
      "the body must be an object (not an array)",
    );
  });
});
