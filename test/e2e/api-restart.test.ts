import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { startPostgres } from "../support/postgres.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** SIGKILLs a sandbox's init from the host, as a crash or an admin would. */
function killSandbox(server: TestServer, id: string): void {
  const pid = readFileSync(`${server.dataDir}/runtime/sandboxes/${id}/init.pid`, "utf8").trim();
  execFileSync("kill", ["-KILL", pid]);
}

/** The same restart scenario on the embedded SQLite store and on a real PostgreSQL server. */
async function restartScenario(server: TestServer) {
  const key = server.adminKey;
  const alive = (await api(server, key, "POST", "/v1/sandboxes", {})).body.id as string;
  const doomed = (await api(server, key, "POST", "/v1/sandboxes", {})).body.id as string;
  await api(server, key, "POST", `/v1/sandboxes/${alive}/exec`, {
    cmd: ["sh", "-c", "echo kept > /workspace/f"],
  });
  const bg = await api(server, key, "POST", `/v1/sandboxes/${alive}/processes`, { cmd: ["sleep", "600"] });

  // The API goes away; one sandbox's processes die meanwhile.
  await server.restart({ whileDown: () => killSandbox(server, doomed) });

  const a = await api(server, key, "GET", `/v1/sandboxes/${alive}`);
  expect(a.body.state).toBe("running");
  const out = await api(server, key, "POST", `/v1/sandboxes/${alive}/exec`, { cmd: ["cat", "/workspace/f"] });
  expect(out.body.stdout).toBe("kept\n");
  const p = await api(server, key, "GET", `/v1/sandboxes/${alive}/processes/${bg.body.pid}`);
  expect(p.body.state).toBe("running");
  const d = await waitFor(
    `sandbox ${doomed} to be failed`,
    async () => (await api(server, key, "GET", `/v1/sandboxes/${doomed}`)).body,
    (x) => x.state === "failed",
  );
  expect(d.state).toBe("failed");
  expect(d.failureReason).toMatch(/ended/);
}

describe("restart", () => {
  it("carries on with running sandboxes and marks dead ones failed (SQLite)", async () => {
    const server = await startTestServer();
    cleanups.push(() => server.stop());
    await restartScenario(server);
  });

  it("does the same on PostgreSQL, where the admin key and sandboxes live in the database", async () => {
    const pg = await startPostgres();
    cleanups.push(() => pg.stop());
    const server = await startTestServer({ env: { BERTH_DATABASE_URL: pg.url } });
    cleanups.push(() => server.stop());
    const h = await api(server, server.adminKey, "GET", "/v1/sandboxes");
    expect(h.status).toBe(200);
    await restartScenario(server);
  });
});
