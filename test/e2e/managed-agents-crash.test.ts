/**
 * Managed Agents after a crash: the server (its own process, `berth serve` from the build) is
 * killed with SIGKILL while a work item runs; the next start must stop that item at the FAKE
 * control plane (test/fixtures/fake-managed-agents), delete its sandbox, record it, and poll
 * again. Nothing may stay claimed without a worker.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type FakeControlPlane, startFakeControlPlane } from "../fixtures/fake-managed-agents/server.js";
import { api } from "../support/server.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { waitFor } from "../support/wait.js";

let srv: ServerProcess;
let plane: FakeControlPlane;
const call = (method: string, path: string, body?: unknown) => api(srv, srv.adminKey, method, path, body);

beforeAll(async () => {
  plane = await startFakeControlPlane();
  srv = await startServerProcess();
}, 120_000);

afterAll(async () => {
  await srv?.purge();
  await plane?.close();
});

const itemIn = (id: string, workId: string, done: (i: any) => boolean) =>
  waitFor(
    `item ${workId}`,
    async () =>
      (await call("GET", `/v1/integrations/managed-agents/${id}`)).body.items?.find(
        (i: any) => i.workId === workId,
      ),
    (i) => !!i && done(i),
    { timeoutMs: 60_000 },
  );

it("after a SIGKILL mid-item, the next start stops the item, deletes its sandbox and polls again", async () => {
  const created = await call("POST", "/v1/integrations/managed-agents", {
    environmentId: plane.environmentId,
    environmentKey: plane.environmentKey,
    baseUrl: plane.url,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.id as string;
  const first = plane.enqueueSession();
  const item = await itemIn(id, first.workId, (i) => i.state === "running" && i.sandboxId);
  await waitFor(
    "the worker's first heartbeat",
    () => plane.item(first.workId)?.state,
    (s) => s === "active",
  );

  await srv.kill("SIGKILL");
  // Nothing stopped it: the control plane still holds it as claimed.
  expect(plane.item(first.workId)?.state).toBe("active");
  await srv.start();

  const ended = await itemIn(id, first.workId, (i) => i.endedAt !== null);
  expect(ended.state).toBe("stopped");
  expect(ended.failure).toMatch(/restarted/);
  expect(plane.item(first.workId)?.state).toBe("stopped");
  expect((await call("GET", `/v1/sandboxes/${item.sandboxId}`)).body.state).toBe("deleted");

  const second = plane.enqueueSession();
  await itemIn(id, second.workId, (i) => i.state === "running");
  const useId = plane.callTool(second.sessionId, "bash", { command: "echo after-crash" });
  const result = await waitFor("the bash result", () => plane.resultOf(second.sessionId, useId), Boolean, {
    timeoutMs: 60_000,
  });
  expect(JSON.stringify(result?.content)).toContain("after-crash");
  plane.terminate(second.sessionId);
  await itemIn(id, second.workId, (i) => i.endedAt !== null);
}, 180_000);
