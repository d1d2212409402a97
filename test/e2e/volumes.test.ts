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

describe("volumes", () => {
  it("keep data across sandboxes, are shared while mounted, hold their size limit, and refuse deletion while used", async () => {
    const made = await call("POST", "/v1/volumes", { name: "data", sizeMiB: 32 });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body).toMatchObject({ name: "data", sizeMiB: 32 });
    expect((await call("POST", "/v1/volumes", { name: "data", sizeMiB: 32 })).status).toBe(409);

    const a = (await call("POST", "/v1/sandboxes", { volumes: [{ name: "data", mountPath: "/data" }] })).body;
    expect(a.volumes).toEqual([{ name: "data", mountPath: "/data" }]);
    expect((await sh(a.id, "echo from-a > /data/note && stat -c %u /data && cat /data/note")).stdout).toBe(
      "1000\nfrom-a\n",
    );
    const b = (await call("POST", "/v1/sandboxes", { volumes: [{ name: "data", mountPath: "/mnt/shared" }] }))
      .body;
    expect((await sh(b.id, "cat /mnt/shared/note")).stdout).toBe("from-a\n");
    // The size limit is the volume's, enforced by the kernel.
    const fill = await sh(b.id, "dd if=/dev/zero of=/mnt/shared/big bs=1M count=64 2>&1; echo rc=$?");
    expect(fill.stdout).toMatch(/No space left on device/);
    await sh(b.id, "rm -f /mnt/shared/big");

    expect((await call("DELETE", `/v1/sandboxes/${a.id}`)).status).toBe(204);
    const busy = await call("DELETE", "/v1/volumes/data");
    expect(busy.status).toBe(409);
    expect(busy.body.error.details.sandboxes).toEqual([b.id]);
    expect((await call("DELETE", `/v1/sandboxes/${b.id}`)).status).toBe(204);

    // A sandbox made later finds what the deleted ones left.
    const c = (await call("POST", "/v1/sandboxes", { volumes: [{ name: "data", mountPath: "/data" }] })).body;
    expect((await sh(c.id, "cat /data/note")).stdout).toBe("from-a\n");
    const listed = (await call("GET", "/v1/volumes")).body.items;
    expect(listed[0]).toMatchObject({ name: "data", sizeMiB: 32 });
    expect(listed[0].usedBytes).toBeGreaterThan(0);
    await call("DELETE", `/v1/sandboxes/${c.id}`);
    expect((await call("DELETE", "/v1/volumes/data")).status).toBe(204);
    expect((await call("GET", "/v1/volumes")).body.items).toEqual([]);
  });

  it("survives hibernate and wake, and belongs to its tenant", async () => {
    await call("POST", "/v1/volumes", { name: "keep", sizeMiB: 16 });
    const s = (await call("POST", "/v1/sandboxes", { volumes: [{ name: "keep", mountPath: "/keep" }] })).body;
    await sh(s.id, "echo sleepy > /keep/x");
    await call("POST", `/v1/sandboxes/${s.id}/hibernate`);
    expect((await sh(s.id, "cat /keep/x")).stdout).toBe("sleepy\n");
    const other = (await call("POST", "/v1/keys", { tenant: "volother" })).body.key;
    const r = await call("POST", "/v1/sandboxes", { volumes: [{ name: "keep", mountPath: "/keep" }] }, other);
    expect(r.status).toBe(404);
    expect((await call("DELETE", "/v1/volumes/keep", undefined, other)).status).toBe(404);
  });
});
