import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { makeTar } from "../support/tar.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "packages", "cli", "dist", "main.js");
// Large enough for the Debian template (~36 MB), small enough to send past quickly.
const MAX_UPLOAD = 64 * 1024 * 1024;

let server: TestServer;
let work: string;
const call = (method: string, path: string, body?: unknown, key?: string) =>
  api(server, key ?? server.adminKey, method, path, body);
const sh = async (id: string, script: string) =>
  (await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] })).body;
const templatesDir = () => join(server.dataDir, "runtime", "templates");
const uploadsDir = () => join(server.dataDir, "template-uploads");

/** PUTs an archive file (or bytes) as template `name`. */
async function upload(name: string, data: Buffer | string, format = "rootfs", key?: string) {
  const body = typeof data === "string" ? readFileSync(data) : data;
  const res = await fetch(`${server.url}/v1/templates/${name}?format=${format}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key ?? server.adminKey}`, "content-type": "application/x-tar" },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * A tiny root filesystem of this host's own files (no busybox, nothing downloaded): dash, cat
 * and ls with the libraries ldd names, in a merged-/usr layout, plus a marker in /etc.
 */
function hostRootfs(dir: string): string {
  for (const d of ["usr/bin", "usr/lib", "usr/lib64", "etc", "opt"])
    mkdirSync(join(dir, d), { recursive: true });
  for (const l of ["bin", "lib", "lib64"]) symlinkSync(`usr/${l}`, join(dir, l));
  const libs = new Set<string>();
  for (const b of ["sh", "cat", "ls"]) {
    copyFileSync(`/usr/bin/${b}`, join(dir, "usr/bin", b));
    for (const m of execFileSync("ldd", [`/usr/bin/${b}`], { encoding: "utf8" }).matchAll(/(\/\S+) \(/g))
      libs.add(m[1] as string);
  }
  for (const lib of libs) {
    const inUsr = lib.replace(/^\/(lib|lib64)\//, "/usr/$1/");
    mkdirSync(join(dir, dirname(inUsr)), { recursive: true });
    copyFileSync(lib, join(dir, inUsr));
  }
  execFileSync("chmod", ["-R", "a+rX", dir]);
  // Writable by the sandbox user, so a sandbox can change its own copy.
  writeFileSync(join(dir, "etc/marker"), "from the tar\n");
  chmodSync(join(dir, "etc/marker"), 0o666);
  writeFileSync(join(dir, "etc/gone"), "a lower layer's file\n");
  writeFileSync(join(dir, "opt/old"), "hidden by an opaque dir\n");
  return dir;
}

/** The second layer of the images: a new file, a whiteout of /etc/gone, /opt made opaque. */
function upperLayer(dir: string): string {
  mkdirSync(join(dir, "etc"), { recursive: true });
  mkdirSync(join(dir, "opt"), { recursive: true });
  writeFileSync(join(dir, "etc/layer2"), "second layer\n");
  writeFileSync(join(dir, "etc/.wh.gone"), "");
  writeFileSync(join(dir, "opt/.wh..wh..opq"), "");
  writeFileSync(join(dir, "opt/new"), "only this\n");
  return dir;
}

const tar = (args: string[]) => execFileSync("tar", args);
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

let rootfsTar: string;
let dockerTar: string;
let ociTar: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-templates-"));
  const base = hostRootfs(join(work, "base"));
  const upper = upperLayer(join(work, "upper"));
  rootfsTar = join(work, "rootfs.tar.gz");
  tar(["-C", base, "--owner=0", "--group=0", "-czf", rootfsTar, "."]);

  // `docker save` layout: manifest.json naming each layer's tar, bottom first.
  const d = join(work, "docker");
  mkdirSync(join(d, "l1"), { recursive: true });
  mkdirSync(join(d, "l2"), { recursive: true });
  tar(["-C", base, "--owner=0", "--group=0", "-cf", join(d, "l1/layer.tar"), "."]);
  tar(["-C", upper, "--owner=0", "--group=0", "-cf", join(d, "l2/layer.tar"), "."]);
  writeFileSync(
    join(d, "manifest.json"),
    JSON.stringify([
      { Config: "config.json", RepoTags: ["berth-test/hand:1"], Layers: ["l1/layer.tar", "l2/layer.tar"] },
    ]),
  );
  writeFileSync(join(d, "config.json"), "{}");
  dockerTar = join(work, "image-docker.tar");
  tar(["-C", d, "-cf", dockerTar, "."]);

  // OCI image layout: index.json -> manifest blob -> gzip layer blobs.
  const o = join(work, "oci");
  const blobs = join(o, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const blob = (file: string) => {
    const digest = sha256(file);
    copyFileSync(file, join(blobs, digest));
    return { digest: `sha256:${digest}`, size: readFileSync(file).length };
  };
  tar(["-C", base, "--owner=0", "--group=0", "-czf", join(work, "l1.tgz"), "."]);
  tar(["-C", upper, "--owner=0", "--group=0", "-czf", join(work, "l2.tgz"), "."]);
  writeFileSync(join(work, "cfg.json"), "{}");
  const layerType = "application/vnd.oci.image.layer.v1.tar+gzip";
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...blob(join(work, "cfg.json")) },
    layers: [
      { mediaType: layerType, ...blob(join(work, "l1.tgz")) },
      { mediaType: layerType, ...blob(join(work, "l2.tgz")) },
    ],
  };
  writeFileSync(join(work, "manifest.json"), JSON.stringify(manifest));
  const m = blob(join(work, "manifest.json"));
  writeFileSync(join(o, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(o, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...m,
          annotations: { "org.opencontainers.image.ref.name": "oci-hand" },
        },
      ],
    }),
  );
  ociTar = join(work, "image-oci.tar");
  tar(["-C", o, "-cf", ociTar, "."]);

  server = await startTestServer({ env: { BERTH_MAX_UPLOAD_BYTES: String(MAX_UPLOAD) } });
});

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** What a template's sandbox sees: the layers' files, no host /usr, the sandbox user. */
const PROBE =
  'cat /etc/marker; cat /etc/layer2 2>/dev/null || echo no-layer2; [ -e /etc/gone ] && echo gone-still-there; ls /opt; [ -e /usr/bin/tar ] && echo host-usr; echo "uid=$(id -u 2>/dev/null || echo none)"; echo x > /workspace/w && cat /workspace/w';

describe("templates", () => {
  it("imports a root filesystem tar; sandboxes of it see its files and not the host's /usr; list, size, delete", async () => {
    const r = await upload("hostbits", rootfsTar);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: "hostbits", source: "rootfs tar" });
    expect(r.body.sizeBytes).toBeGreaterThan(100_000);
    expect(Date.parse(r.body.createdAt)).toBeGreaterThan(Date.now() - 600_000);

    const list = (await call("GET", "/v1/templates")).body.items;
    expect(list.map((t: { name: string }) => t.name)).toEqual(["default", "hostbits"]);
    expect(list[0].sizeBytes).toBeGreaterThan(0);
    expect((await call("GET", "/v1/templates/hostbits")).body).toEqual(r.body);

    const a = await call("POST", "/v1/sandboxes", { template: "hostbits" });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.template).toBe("hostbits");
    const b = (await call("POST", "/v1/sandboxes", { template: "hostbits" })).body.id;
    const out = await sh(a.body.id, PROBE);
    expect(out.stdout).toBe("from the tar\nno-layer2\ngone-still-there\nold\nuid=none\nx\n");
    // One copy on disk: both sandboxes' lower layer is the template dir, which nobody writes.
    await sh(b, "echo mine > /etc/marker");
    expect((await sh(b, "cat /etc/marker")).stdout).toBe("mine\n");
    expect((await sh(a.body.id, "cat /etc/marker")).stdout).toBe("from the tar\n");
    expect(readFileSync(join(templatesDir(), "hostbits", "rootfs", "etc", "marker"), "utf8")).toBe(
      "from the tar\n",
    );

    // Wake brings it back on its own template, not on default.
    await sh(a.body.id, "echo kept > /workspace/k");
    expect((await call("POST", `/v1/sandboxes/${a.body.id}/hibernate`)).status).toBe(200);
    expect((await call("POST", `/v1/sandboxes/${a.body.id}/wake`)).status).toBe(200);
    expect(
      (await sh(a.body.id, "cat /workspace/k /etc/marker; [ -e /usr/bin/tar ] || echo own-usr")).stdout,
    ).toBe("kept\nfrom the tar\nown-usr\n");

    // In use (a hibernated user counts too): 409, and it stays.
    await call("POST", `/v1/sandboxes/${a.body.id}/hibernate`);
    const busy = await call("DELETE", "/v1/templates/hostbits");
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe("conflict");
    expect(busy.body.error.message).toContain(a.body.id);
    await call("DELETE", `/v1/sandboxes/${a.body.id}`);
    await call("DELETE", `/v1/sandboxes/${b}`);
    expect((await call("DELETE", "/v1/templates/hostbits")).status).toBe(204);
    expect((await call("GET", "/v1/templates/hostbits")).status).toBe(404);
    expect(existsSync(join(templatesDir(), "hostbits"))).toBe(false);
    const gone = await call("POST", "/v1/sandboxes", { template: "hostbits" });
    expect(gone.status).toBe(400);
    expect(gone.body.error.details.field).toBe("template");
  });

  it("imports a docker save archive and an OCI image layout: layers in order, whiteouts and opaque dirs honoured", async () => {
    const d = await upload("dock", dockerTar, "docker");
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    expect(d.body.source).toBe("docker save archive berth-test/hand:1");
    const o = await upload("oci", ociTar, "oci");
    expect(o.status, JSON.stringify(o.body)).toBe(201);
    expect(o.body.source).toBe("OCI image oci-hand");
    for (const name of ["dock", "oci"]) {
      const s = await call("POST", "/v1/sandboxes", { template: name });
      expect(s.status, JSON.stringify(s.body)).toBe(201);
      expect((await sh(s.body.id, PROBE)).stdout).toBe("from the tar\nsecond layer\nnew\nuid=none\nx\n");
      await call("DELETE", `/v1/sandboxes/${s.body.id}`);
    }
    // The unpacked outer archive is not kept beside the template.
    expect(readdirSync(join(templatesDir(), "dock")).sort()).toEqual(["meta.json", "rootfs"]);
    // A docker archive sent as OCI is refused cleanly.
    const wrong = await upload("wrong", dockerTar, "oci");
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.message).toContain("oci-layout");
  });

  it("refuses hostile archives whole, writing nothing outside and leaving nothing behind", async () => {
    const outside = mkdtempSync(join(tmpdir(), "berth-tpl-outside-"));
    const cases = [
      makeTar([
        { name: "etc/ok", content: "x" },
        { name: "../../../escape", content: "pwned" },
      ]),
      makeTar([{ name: `${outside}/abs`, content: "pwned" }]),
      makeTar([
        { name: "link", type: "symlink", linkname: outside },
        { name: "link/pwned", content: "pwned" },
      ]),
      makeTar([
        { name: "etc", type: "dir" },
        { name: "etc/h", type: "hardlink", linkname: "/etc/hostname" },
      ]),
      makeTar([
        { name: "a", type: "symlink", linkname: "/" },
        { name: "a/etc/pwned", content: "pwned" },
      ]),
      Buffer.from("this is not a tar archive at all, just text padded out".padEnd(2048, "!")),
    ];
    for (const [i, body] of cases.entries()) {
      const r = await upload(`hostile${i}`, body);
      expect(r.status, `case ${i}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
      expect(JSON.stringify(r.body)).not.toContain(server.dataDir);
    }
    // The same symlink trick one layer later (a docker image whose second layer writes through it).
    const d = join(work, "hostile-docker");
    mkdirSync(d);
    writeFileSync(join(d, "l1.tar"), makeTar([{ name: "link", type: "symlink", linkname: outside }]));
    writeFileSync(join(d, "l2.tar"), makeTar([{ name: "link/pwned", content: "pwned" }]));
    writeFileSync(join(d, "manifest.json"), JSON.stringify([{ Layers: ["l1.tar", "l2.tar"] }]));
    tar(["-C", d, "-cf", join(work, "hostile-docker.tar"), "."]);
    expect((await upload("hostiled", join(work, "hostile-docker.tar"), "docker")).status).toBe(400);
    // A manifest naming a layer outside the archive.
    writeFileSync(join(d, "manifest.json"), JSON.stringify([{ Layers: ["../../etc/passwd"] }]));
    tar(["-C", d, "-cf", join(work, "hostile-docker2.tar"), "."]);
    expect((await upload("hostiled", join(work, "hostile-docker2.tar"), "docker")).status).toBe(400);

    expect(readdirSync(outside)).toEqual([]);
    rmSync(outside, { recursive: true });
    expect(existsSync("/escape")).toBe(false);
    expect(existsSync("/etc/pwned")).toBe(false);
    expect(
      execFileSync("find", [server.dataDir, "-name", "escape", "-o", "-name", "pwned"], { encoding: "utf8" }),
    ).toBe("");
    expect(readdirSync(templatesDir()).filter((n) => n.startsWith("."))).toEqual([]);
    expect(readdirSync(uploadsDir())).toEqual([]);
    const names = (await call("GET", "/v1/templates")).body.items.map((t: { name: string }) => t.name);
    expect(names.filter((n: string) => n.startsWith("hostile"))).toEqual([]);
  });

  it("refuses bad names, oversized uploads and callers without an admin key, with stable codes", async () => {
    for (const name of ["Upper", "-dash", ".hidden", "a".repeat(64), "sp%20ace", "..%2Fx", "default"]) {
      const r = await upload(name, makeTar([{ name: "f", content: "x" }]));
      expect(r.status, name).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
      expect(r.body.error.details.field).toBe("name");
    }
    const badFormat = await upload("okname", makeTar([{ name: "f" }]), "zip");
    expect(badFormat.status).toBe(400);

    const big = Buffer.alloc(MAX_UPLOAD + 1024 * 1024);
    const r = await upload("toobig", big);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
    // Chunked (no Content-Length): cut off as it grows past the limit.
    const chunked = await fetch(`${server.url}/v1/templates/toobig2`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.adminKey}` },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < MAX_UPLOAD / 1024 / 1024 + 4; i++) c.enqueue(new Uint8Array(1024 * 1024));
          c.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(readdirSync(uploadsDir())).toEqual([]);
    expect(readdirSync(templatesDir()).filter((n) => n.startsWith("."))).toEqual([]);

    const tenant = (await call("POST", "/v1/keys", { tenant: "tplother" })).body.key;
    expect((await upload("mine", rootfsTar, "rootfs", tenant)).status).toBe(403);
    expect((await call("DELETE", "/v1/templates/default", undefined, tenant)).status).toBe(403);
    expect((await call("GET", "/v1/templates", undefined, tenant)).status).toBe(200);
    const def = await call("DELETE", "/v1/templates/default");
    expect(def.status).toBe(400);
  });

  it("builds a template by running a script in a sandbox of another, streaming progress; a failing script leaves nothing", async () => {
    const res = await fetch(`${server.url}/v1/templates/built/build`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${server.adminKey}`,
        "content-type": "application/json",
        accept: "text/event-stream",
      },
      body: JSON.stringify({
        from: "default",
        run: "echo building; mkdir -p /home/user/.tool && echo v1 > /home/user/.tool/version && echo w > /workspace/made && rm -f /tmp/*; echo scratch > /tmp/not-kept",
      }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("event: status");
    expect(text).toContain('"data":"building\\n"');
    expect(text).toContain("event: template");
    const made = (await call("GET", "/v1/templates/built")).body;
    expect(made).toMatchObject({ name: "built", source: "built from default" });

    const s = (await call("POST", "/v1/sandboxes", { template: "built" })).body.id;
    const out = await sh(
      s,
      "cat /home/user/.tool/version /workspace/made; ls /tmp; node --version >/dev/null && echo host-usr",
    );
    expect(out.stdout).toBe("v1\nw\nhost-usr\n");
    // No build sandbox is left.
    const left = (await call("GET", "/v1/sandboxes")).body.items.filter(
      (x: { labels: Record<string, string> }) => x.labels["berth.template-build"],
    );
    expect(left).toEqual([]);
    await call("DELETE", `/v1/sandboxes/${s}`);

    const fail = await call("POST", "/v1/templates/broken/build", {
      run: "echo half > /workspace/x; exit 3",
    });
    expect(fail.status).toBe(400);
    expect(fail.body.error.details.exitCode).toBe(3);
    expect((await call("GET", "/v1/templates/broken")).status).toBe(404);
    const unknown = await call("POST", "/v1/templates/x2/build", { from: "nope", run: "true" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.field).toBe("from");
    expect((await call("POST", "/v1/templates/built/build", { run: "true" })).status).toBe(409);
    expect((await call("DELETE", "/v1/templates/built")).status).toBe(204);
  });

  it("keeps each sandbox's disk limit on an imported template (the template itself is not written)", async () => {
    expect((await upload("disklimit", rootfsTar)).status).toBe(201);
    const s = (await call("POST", "/v1/sandboxes", { template: "disklimit", resources: { diskMiB: 32 } }))
      .body.id;
    const out = await sh(
      s,
      "i=0; while cat /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/bin/ls /usr/bin/sh >> /workspace/fill 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && break; done; echo $i; ls -s /workspace/fill",
    );
    const [rounds, size] = (out.stdout as string).trim().split("\n");
    // Stopped by a full disk well before 200 rounds (~500 MB), with at most ~32 MiB written.
    expect(Number(rounds)).toBeLessThan(200);
    expect(Number.parseInt(size ?? "0", 10)).toBeLessThanOrEqual(32 * 1024);
    await call("DELETE", `/v1/sandboxes/${s}`);
    expect((await call("DELETE", "/v1/templates/disklimit")).status).toBe(204);
  });

  const debianTar = process.env.BERTH_TEST_DEBIAN_TAR;
  it.runIf(debianTar)(
    "runs a sandbox on a Debian template made by scripts/build-debian-template.sh",
    async () => {
      const r = await upload("debian", debianTar as string);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const s = (await call("POST", "/v1/sandboxes", { template: "debian" })).body.id;
      const out = await sh(
        s,
        "cat /etc/debian_version >/dev/null && echo debian; id -un; dpkg -s apt >/dev/null && echo apt; [ -e /usr/bin/node ] || echo no-host-node",
      );
      expect(out.stdout).toBe("debian\nuser\napt\nno-host-node\n");
      await call("DELETE", `/v1/sandboxes/${s}`);
      expect((await call("DELETE", "/v1/templates/debian")).status).toBe(204);
    },
  );
  if (!debianTar)
    console.log(
      "templates: the Debian template case is skipped (set BERTH_TEST_DEBIAN_TAR to a tar from scripts/build-debian-template.sh)",
    );

  it("berth template import | list | build | rm through the CLI, with progress on stderr", async () => {
    const env = { BERTH_URL: server.url, BERTH_API_KEY: server.adminKey };
    const imp = await berth(["template", "import", "clitpl", rootfsTar], env);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stderr).toMatch(/uploaded .* \(100%\)/);
    expect(imp.stdout).toContain("clitpl");
    const list = await berth(["template", "list"], env);
    expect(list.stdout).toMatch(/NAME\s+SIZE\s+CREATED\s+SOURCE/);
    expect(list.stdout).toContain("clitpl");
    const build = await berth(
      ["template", "build", "clibuilt", "--from", "default", "--run", "echo hello-build"],
      env,
    );
    expect(build.code, build.stderr).toBe(0);
    expect(build.stderr).toContain("hello-build");
    expect(build.stderr).toContain("==> ");
    const rm = await berth(["template", "rm", "clitpl", "clibuilt"], env);
    expect(rm.code, rm.stderr).toBe(0);
    const bad = await berth(["template", "import", "Bad", rootfsTar], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid_request");
  });
});

function berth(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
