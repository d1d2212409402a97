import type { SessionRecord, Store } from "@berth/core";
import { beforeAll, expect, it } from "vitest";
import { onEachDatabase } from "../../../test/support/stores.js";

onEachDatabase("store: sessions, running stretches, audit", (t) => {
  let store: Store;
  beforeAll(() => {
    store = t.store;
  });

  it("stores agent sessions, their updates and their event log in order", async () => {
    const base: SessionRecord = {
      id: "ses_1",
      tenantId: "t1",
      sandboxId: "sb1",
      pattern: "hybrid",
      state: "starting",
      agentSessionId: null,
      prompt: "write the report ü",
      webhooks: { targets: [{ url: "https://example.com/h", events: ["state"] }], sealedSecret: "v1.x" },
      options: {
        maxTurns: 50,
        maxBudgetUsd: 0.5,
        maxDurationSeconds: null,
        cwd: "/home/user",
        env: { A: "b" },
      },
      turns: 0,
      usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 },
      tokensUsd: 0,
      result: null,
      failureReason: null,
      failure: null,
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      endedAt: null,
    };
    await store.insertSession(base);
    await store.insertSession({
      ...base,
      id: "ses_2",
      tenantId: "t2",
      prompt: null,
      createdAt: "2026-01-02T00:00:00.000Z",
    });
    expect(await store.getSession("ses_1")).toEqual(base);
    const next = await store.updateSession("ses_1", {
      state: "idle",
      agentSessionId: "abc",
      turns: 3,
      usage: { inputTokens: 10, outputTokens: 2, cacheReadTokens: 1, cacheCreationTokens: 0 },
      tokensUsd: 0.0125,
      result: { type: "result", subtype: "success", nested: [1, { a: "ü" }] },
    });
    expect(next).toMatchObject({ state: "idle", agentSessionId: "abc", turns: 3, tokensUsd: 0.0125 });
    expect(next?.result).toEqual({ type: "result", subtype: "success", nested: [1, { a: "ü" }] });
    expect(await store.updateSession("ses_nope", { state: "idle" })).toBeNull();
    const failed = await store.updateSession("ses_2", {
      failure: { code: "model_error", message: "the model answered 529", upstreamStatus: 529 },
      failureReason: "the model answered 529",
    });
    expect(failed?.failure).toEqual({
      code: "model_error",
      message: "the model answered 529",
      upstreamStatus: 529,
    });
    expect((await store.updateSession("ses_2", { failure: null }))?.failure).toBeNull();
    expect((await store.listSessions({ tenantId: "t1" })).map((x) => x.id)).toEqual(["ses_1"]);
    expect((await store.listSessions({ states: ["idle"] })).map((x) => x.id)).toEqual(["ses_1"]);
    expect((await store.listSessions({})).map((x) => x.id)).toEqual(["ses_2", "ses_1"]);
    expect(await store.listSessions({ states: [] })).toEqual([]);
    const at = "2026-01-01T00:00:01.000Z";
    const a = await store.appendSessionEvent({
      sessionId: "ses_1",
      type: "state",
      data: { state: "starting" },
      at,
    });
    const b = await store.appendSessionEvent({
      sessionId: "ses_1",
      type: "message",
      data: { type: "assistant" },
      at,
    });
    await store.appendSessionEvent({ sessionId: "ses_2", type: "message", data: { type: "other" }, at });
    expect(b.seq).toBeGreaterThan(a.seq);
    expect((await store.listSessionEvents("ses_1", 0)).map((e) => e.data)).toEqual([
      { state: "starting" },
      { type: "assistant" },
    ]);
    expect((await store.listSessionEvents("ses_1", a.seq)).map((e) => e.seq)).toEqual([b.seq]);
  });

  it("keeps a sandbox's running stretches: one open at a time, closed once, forgotten on request", async () => {
    await store.startSandboxRun("sb_runs", "2026-01-01T00:00:00.000Z");
    // A second start while one is open changes nothing (a stretch is never opened twice).
    await store.startSandboxRun("sb_runs", "2026-01-01T00:00:05.000Z");
    await store.endSandboxRun("sb_runs", "2026-01-01T00:00:10.000Z");
    // Ending with none open changes nothing.
    await store.endSandboxRun("sb_runs", "2026-01-01T00:00:15.000Z");
    await store.startSandboxRun("sb_runs", "2026-01-01T00:01:00.000Z");
    await store.startSandboxRun("sb_other", "2026-01-01T00:00:30.000Z");
    expect(await store.listSandboxRuns(["sb_runs"])).toEqual([
      { sandboxId: "sb_runs", startedAt: "2026-01-01T00:00:00.000Z", endedAt: "2026-01-01T00:00:10.000Z" },
      { sandboxId: "sb_runs", startedAt: "2026-01-01T00:01:00.000Z", endedAt: null },
    ]);
    expect((await store.listSandboxRuns(["sb_runs", "sb_other"])).map((r) => r.sandboxId)).toEqual([
      "sb_runs",
      "sb_other",
      "sb_runs",
    ]);
    expect(await store.listSandboxRuns([])).toEqual([]);
    await store.deleteSandboxRuns("sb_runs");
    expect(await store.listSandboxRuns(["sb_runs"])).toEqual([]);
    expect(await store.listSandboxRuns(["sb_other"])).toHaveLength(1);
  });

  it("keeps the audit trail in order and pages it by time and id", async () => {
    const row = (at: string, status: number) => ({
      at,
      tenantId: status === 401 ? null : "acme",
      keyId: status === 401 ? null : "k1",
      method: "POST",
      path: "/v1/sandboxes",
      status,
      requestId: `req-${at}`,
    });
    await store.appendAudit(row("2026-01-01T00:00:00.000Z", 201));
    await store.appendAudit(row("2026-01-02T00:00:00.000Z", 401));
    await store.appendAudit(row("2026-01-03T00:00:00.000Z", 409));
    const all = await store.listAudit({ limit: 10 });
    expect(all.map((a) => a.status)).toEqual([201, 401, 409]);
    expect(all[1]).toEqual({ id: expect.any(Number), ...row("2026-01-02T00:00:00.000Z", 401) });
    const window = await store.listAudit({ from: "2026-01-02", to: "2026-01-03", limit: 10 });
    expect(window.map((a) => a.status)).toEqual([401]);
    const page = await store.listAudit({ limit: 1, afterId: (all[0] as { id: number }).id });
    expect(page.map((a) => a.status)).toEqual([401]);
  });
});
