import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
const call = (method: string, path: string, body?: unknown, key?: string) =>
  api(server, key ?? server.adminKey, method, path, body);
const sh = async (id: string, script: string) =>
  (await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] })).body;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe("snapshots", () => {
  it("captures a running sandbox and starts three sandboxes from it in parallel, each with the files", async () => {
    const src = (await call("POST", "/v1/sandboxes", { env: { FROM: "snap" }, labels: { a: "b" } })).body.id;
    await sh(
      src,
      "mkdir -p /workspace/data && head -c 20000000 /dev/urandom > /workspace/data/blob && sha256sum /workspace/data/blob > /workspace/sum && echo home > /home/user/h",
    );
    const snap = await call("POST", `/v1/sandboxes/${src}/snapshots`, { name: "base" });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(snap.body).toMatchObject({ sandboxId: src, name: "base", template: "default" });
    expect(snap.body.sizeBytes).toBeGreaterThan(20_000_000);
    // The source keeps running after it was frozen for the copy.
    expect((await call("GET", `/v1/sandboxes/${src}`)).body.state).toBe("running");
    expect((await sh(src, "echo alive")).stdout).toBe("alive\n");

    const made = await Promise.all(
      [1, 2, 3].map(() => call("POST", "/v1/sandboxes", { fromSnapshot: snap.body.id })),
    );
    for (const m of made) expect(m.status, JSON.stringify(m.body)).toBe(201);
    const ids = made.map((m) => m.body.id as string);
    for (const id of ids) {
      const r = await sh(
        id,
        'sha256sum -c /workspace/sum >/dev/null && cat /home/user/h && echo "$FROM" && whoami',
      );
      expect(r.stdout).toBe("home\nsnap\nuser\n");
    }
    // They are copies: a change in one is not seen by another.
    await sh(ids[0]!, "echo mine > /workspace/only-here");
    expect((await sh(ids[1]!, "test -e /workspace/only-here; echo $?")).stdout).toBe("1\n");
  });

  it("captures a hibernated sandbox, lists, deletes, and keeps snapshots per tenant", async () => {
    const src = (await call("POST", "/v1/sandboxes", {})).body.id;
    await sh(src, "echo asleep > /workspace/f");
    await call("POST", `/v1/sandboxes/${src}/hibernate`);
    const snap = (await call("POST", `/v1/sandboxes/${src}/snapshots`, {})).body;
    expect(snap.id).toMatch(/^sn/);
    expect((await call("GET", `/v1/sandboxes/${src}`)).body.state).toBe("hibernated");
    const copy = (await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id })).body.id;
    expect((await sh(copy, "cat /workspace/f")).stdout).toBe("asleep\n");

    const other = (await call("POST", "/v1/keys", { tenant: "snapother" })).body.key;
    expect((await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id }, other)).status).toBe(404);
    expect((await call("GET", "/v1/snapshots", undefined, other)).body.items).toEqual([]);
    expect((await call("DELETE", `/v1/snapshots/${snap.id}`, undefined, other)).status).toBe(404);

    const listed = (await call("GET", "/v1/snapshots")).body.items.map((s: { id: string }) => s.id);
    expect(listed).toContain(snap.id);
    expect((await call("DELETE", `/v1/snapshots/${snap.id}`)).status).toBe(204);
    expect(existsSync(`${server.dataDir}/snapshots/${snap.id}.tar.zst`)).toBe(false);
    expect((await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id })).status).toBe(404);
  });

  it("refuses a disk smaller than the snapshot's", async () => {
    const src = (await call("POST", "/v1/sandboxes", { resources: { diskMiB: 128 } })).body.id;
    const snap = (await call("POST", `/v1/sandboxes/${src}/snapshots`, {})).body;
    const r = await call("POST", "/v1/sandboxes", { fromSnapshot: snap.id, resources: { diskMiB: 64 } });
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe("resources.diskMiB");
  });
});
