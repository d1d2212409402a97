// What a server killed (SIGKILL) between the steps of an operation leaves behind, rebuilt while
// the server is down with the real store and runtime, then a restart: every operation must end
// done or undone, with the store matching the machine and nothing leaked.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { SandboxState } from "@berth/core";
import { LinuxRuntime } from "@berth/runtime-linux";
import { openStore } from "@berth/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
const sh = (id: string, script: string) =>
  call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] });
const state = async (id: string) => (await call("GET", `/v1/sandboxes/${id}`)).body.state as SandboxState;
const mountsOf = (id: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(id));

/** Runs `fn` with the server down, against its own store and a runtime on its data dir. */
async function whileDown(fn: (s: Awaited<ReturnType<typeof openStore>>, rt: LinuxRuntime) => Promise<void>) {
  await server.restart({
    whileDown: async () => {
      const store = await openStore({ dataDir: server.dataDir });
      const rt = new LinuxRuntime({ dataDir: server.dataDir, ociRuntime: "auto", diskPoolSize: 0 });
      await rt.start();
      try {
        await fn(store, rt);
      } finally {
        await rt.close();
        await store.close();
      }
    },
  });
}
const intent = (id: string, from: SandboxState, to: SandboxState) => ({
  sandboxId: id,
  type: "transition",
  data: { from, to },
  at: new Date().toISOString(),
});

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe("recovery after a kill mid-operation", () => {
  it("finishes a hibernate whose processes were already ended", async () => {
    const id = (await call("POST", "/v1/sandboxes", {})).body.id;
    await sh(id, "echo kept > /workspace/f");
    await whileDown(async (store, rt) => {
      await store.appendEvent(intent(id, "running", "hibernated"));
      await rt.hibernate(id); // the store still says running
    });
    expect(await state(id)).toBe("hibernated");
    expect(mountsOf(id)).toEqual([]);
    expect((await sh(id, "cat /workspace/f")).body.stdout).toBe("kept\n");
  });

  it("finishes a wake whose sandbox already runs, and undoes one cut short before its init started", async () => {
    const done = (await call("POST", "/v1/sandboxes", {})).body.id;
    const cut = (await call("POST", "/v1/sandboxes", {})).body.id;
    await sh(cut, "echo still > /workspace/f");
    await call("POST", `/v1/sandboxes/${done}/hibernate`);
    await call("POST", `/v1/sandboxes/${cut}/hibernate`);
    await whileDown(async (store, rt) => {
      await store.appendEvent(intent(done, "hibernated", "running"));
      await rt.wake(done);
      await store.appendEvent(intent(cut, "hibernated", "running"));
      await rt.wake(cut);
      // ...and then the sandbox's init dies before the record says running.
      const pid = readFileSync(`${server.dataDir}/runtime/sandboxes/${cut}/init.pid`, "utf8").trim();
      process.kill(Number(pid), "SIGKILL");
    });
    expect(await state(done)).toBe("running");
    const direct = await sh(done, "echo up");
    expect(direct.body.stdout).toBe("up\n");
    expect(direct.headers.get("x-berth-wake-ms")).toBeNull();
    expect(await state(cut)).toBe("hibernated");
    expect(mountsOf(cut)).toEqual([]);
    expect((await sh(cut, "cat /workspace/f")).body.stdout).toBe("still\n");
  });

  it("thaws a sandbox frozen by a pause or snapshot the record never saw, and drops half-written snapshots", async () => {
    const id = (await call("POST", "/v1/sandboxes", {})).body.id;
    const tmp = `${server.dataDir}/snapshots/snhalfwritten00000.tar.zst.tmp`;
    const stray = `${server.dataDir}/snapshots/snnorecord00000000.tar.zst`;
    await whileDown(async (_store, rt) => {
      await rt.pause(id);
      writeFileSync(tmp, "partial");
      writeFileSync(stray, "no row");
    });
    expect(await state(id)).toBe("running");
    const r = await sh(id, "echo thawed");
    expect(r.body.stdout).toBe("thawed\n");
    expect(r.headers.get("x-berth-wake-ms")).toBeNull();
    expect(existsSync(tmp)).toBe(false);
    expect(existsSync(stray)).toBe(false);
  });

  it("finishes a delete that was recorded but not carried out", async () => {
    const id = (await call("POST", "/v1/sandboxes", {})).body.id;
    await whileDown(async (store) => {
      await store.updateSandbox(id, { state: "deleted" });
    });
    expect(await state(id)).toBe("deleted");
    expect(mountsOf(id)).toEqual([]);
    expect(existsSync(`${server.dataDir}/runtime/sandboxes/${id}`)).toBe(false);
  });
});
