import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { readSse } from "../support/sse.js";

let server: TestServer;
let id: string;
const auth = () => ({ authorization: `Bearer ${server.adminKey}` });
const url = (p: string) => `${server.url}/v1/sandboxes/${id}${p}`;
const sh = async (script: string) =>
  (await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] }))
    .body;

beforeAll(async () => {
  server = await startTestServer();
  id = (await api(server, server.adminKey, "POST", "/v1/sandboxes", {})).body.id;
});

afterAll(async () => {
  await server?.stop();
});

describe("file endpoints", () => {
  it("uploads and downloads bytes unchanged, creating parents, owned by the sandbox user", async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    const put = await fetch(url("/files/content?path=/workspace/a/b/data.bin"), {
      method: "PUT",
      headers: { ...auth(), "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ path: "/workspace/a/b/data.bin", size: bytes.length });
    const got = await fetch(url("/files/content?path=/workspace/a/b/data.bin"), { headers: auth() });
    expect(got.headers.get("content-length")).toBe(String(bytes.length));
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    expect((await sh("stat -c %u /workspace/a/b/data.bin")).stdout.trim()).toBe("1000");
    // A JSON content type is still just bytes for this endpoint.
    const json = await fetch(url("/files/content?path=/workspace/x.json"), {
      method: "PUT",
      headers: { ...auth(), "content-type": "application/json" },
      body: '{"a":1}',
    });
    expect(json.status).toBe(200);
    expect((await sh("cat /workspace/x.json")).stdout).toBe('{"a":1}');
  });

  it("lists, makes directories, moves and removes", async () => {
    expect(
      (
        await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/files/mkdir`, {
          path: "/workspace/d/e",
        })
      ).status,
    ).toBe(201);
    await fetch(url("/files/content?path=/workspace/d/f.txt"), {
      method: "PUT",
      headers: auth(),
      body: "hi",
    });
    const list = await api(server, server.adminKey, "GET", `/v1/sandboxes/${id}/files?path=/workspace/d`);
    expect(list.body.entries.map((e: { name: string; type: string }) => [e.name, e.type])).toEqual([
      ["e", "dir"],
      ["f.txt", "file"],
    ]);
    const f = list.body.entries[1];
    expect(f).toMatchObject({ size: 2, mode: expect.any(Number), mtime: expect.stringMatching(/Z$/) });
    const mv = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/files/move`, {
      from: "/workspace/d/f.txt",
      to: "/workspace/moved/g.txt",
    });
    expect(mv.status).toBe(200);
    expect((await sh("cat /workspace/moved/g.txt")).stdout).toBe("hi");
    const notEmpty = await api(
      server,
      server.adminKey,
      "DELETE",
      `/v1/sandboxes/${id}/files?path=/workspace/moved`,
    );
    expect(notEmpty.status).toBeGreaterThanOrEqual(400);
    expect(notEmpty.status).toBeLessThan(500);
    const rm = await api(
      server,
      server.adminKey,
      "DELETE",
      `/v1/sandboxes/${id}/files?path=/workspace/moved&recursive=true`,
    );
    expect(rm.status).toBe(204);
    expect((await sh("test -e /workspace/moved; echo $?")).stdout.trim()).toBe("1");
    const onFile = await api(
      server,
      server.adminKey,
      "GET",
      `/v1/sandboxes/${id}/files?path=/workspace/x.json`,
    );
    expect(onFile.status).toBe(400);
  });

  it("moves directory trees in and out as tar", async () => {
    const src = mkdtempSync(join(tmpdir(), "berth-tar-"));
    const out = mkdtempSync(join(tmpdir(), "berth-tar-out-"));
    try {
      execFileSync("sh", [
        "-c",
        `mkdir -p ${src}/sub && echo one > ${src}/one.txt && echo two > ${src}/sub/two.txt`,
      ]);
      const tar = execFileSync("tar", ["-c", "-f", "-", "-C", src, "."]);
      const put = await fetch(url("/archive?path=/workspace/tree"), {
        method: "PUT",
        headers: { ...auth(), "content-type": "application/x-tar" },
        body: tar,
      });
      expect(put.status).toBe(200);
      expect((await sh("cat /workspace/tree/sub/two.txt")).stdout).toBe("two\n");
      const got = await fetch(url("/archive?path=/workspace/tree"), { headers: auth() });
      expect(got.headers.get("content-type")).toContain("application/x-tar");
      writeFileSync(join(out, "t.tar"), Buffer.from(await got.arrayBuffer()));
      execFileSync("tar", ["-x", "-f", join(out, "t.tar"), "-C", out]);
      expect(readFileSync(join(out, "sub/two.txt"), "utf8")).toBe("two\n");
      const bad = await fetch(url("/archive?path=/workspace/t2"), {
        method: "PUT",
        headers: auth(),
        body: "not a tar",
      });
      expect(bad.status).toBe(400);
      expect((await bad.json()).error.code).toBe("invalid_request");
    } finally {
      rmSync(src, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("streams file changes from watch", async () => {
    await sh("mkdir -p /workspace/w");
    // The server answers (headers) once the watch is in place: changes after that are seen.
    let opened = () => {};
    const open = new Promise<void>((r) => {
      opened = r;
    });
    const watching = readSse(
      url("/files/watch?path=/workspace/w"),
      { headers: auth() },
      {
        until: (_e, all) => all.some((x) => x.data.type === "delete"),
        timeoutMs: 10_000,
        onOpen: opened,
      },
    );
    await open;
    await sh("echo a > /workspace/w/new.txt; sleep 0.1; rm /workspace/w/new.txt");
    const { events } = await watching;
    const kinds = events.map((e) => e.data.type);
    expect(kinds).toContain("create");
    expect(kinds).toContain("delete");
    expect(events.every((e) => e.data.path.startsWith("/workspace/w"))).toBe(true);
  });
});

describe("the file API cannot leave the sandbox", () => {
  it("refuses symlink and .. escapes to host files, and writes through symlinks into read-only places", async () => {
    const secret = join(server.dataDir, "host-secret.txt");
    writeFileSync(secret, "host only");
    await sh(
      `ln -s ${secret} /workspace/link; ln -s /usr/bin /workspace/usrlink; ln -s / /workspace/rootlink`,
    );
    for (const p of [
      "/workspace/link",
      `/workspace/../../../..${secret}`,
      `/workspace/rootlink${secret}`,
      `/proc/1/root${secret}`,
    ]) {
      const r = await fetch(url(`/files/content?path=${encodeURIComponent(p)}`), { headers: auth() });
      expect(r.status, p).toBeGreaterThanOrEqual(400);
      expect(await r.text()).not.toContain("host only");
    }
    const w = await fetch(url(`/files/content?path=${encodeURIComponent("/workspace/usrlink/evil")}`), {
      method: "PUT",
      headers: auth(),
      body: "x",
    });
    expect(w.status).toBeGreaterThanOrEqual(400);
    expect(w.status).toBeLessThan(500);
    // A hostile archive stays inside the sandbox.
    const evil = mkdtempSync(join(tmpdir(), "berth-evil-"));
    try {
      execFileSync("sh", ["-c", `cd ${evil} && echo pwned > pwn.txt`]);
      const tar = execFileSync("tar", [
        "-c",
        "-f",
        "-",
        "-P",
        "-C",
        evil,
        `--transform=s,^,../../../../..${server.dataDir}/,`,
        "pwn.txt",
      ]);
      await fetch(url("/archive?path=/workspace/t3"), { method: "PUT", headers: auth(), body: tar });
      expect(() => readFileSync(join(server.dataDir, "pwn.txt"))).toThrow();
    } finally {
      rmSync(evil, { recursive: true, force: true });
    }
  });
});
