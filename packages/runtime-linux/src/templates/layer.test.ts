import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeTar, type TarMember } from "../../../../test/support/tar.js";
import { dockerSaveLayers, ImageFormatError, ociLayoutLayers, openArchive } from "./image.js";
import { applyLayer, memberPath, UnsafeArchiveError } from "./layer.js";
import { hasId, prepareRootfs } from "./rootfs.js";
import { readTar } from "./tar-reader.js";

let dir: string;
let root: string;
/** Where a hostile member would land if it escaped `root`. */
let outside: string;

beforeEach(() => {
  dir = mkdtempSync("/tmp/berth-layer-test-");
  root = join(dir, "root");
  outside = join(dir, "outside");
  mkdirSync(root);
  mkdirSync(outside);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function* chunks(b: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const apply = (members: TarMember[], whiteouts: "oci" | "overlay" | "none" = "oci") =>
  applyLayer(root, chunks(makeTar(members)), { whiteouts });

const tree = (d: string): string[] => {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(d, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      out.push(r);
      const st = lstatSync(join(d, r));
      if (st.isDirectory()) walk(r);
    }
  };
  walk("");
  return out;
};

describe("readTar", () => {
  it("reads what GNU tar writes: long names, symlinks, hard links, modes, owners, contents", async () => {
    const src = join(dir, "src");
    const long = `${"d".repeat(120)}/${"f".repeat(120)}`;
    mkdirSync(join(src, "d".repeat(120)), { recursive: true });
    writeFileSync(join(src, long), "deep");
    writeFileSync(join(src, "exe"), "#!/bin/sh\n", { mode: 0o4755 });
    symlinkSync("exe", join(src, "link"));
    execFileSync("ln", [join(src, "exe"), join(src, "hard")]);
    execFileSync("chown", ["1234:5678", join(src, "exe")]);
    execFileSync("chmod", ["4755", join(src, "exe")]);
    const tar = execFileSync("tar", ["-c", "-f", "-", "-C", src, "."]);
    const seen: Record<string, { type: string; linkname: string; uid: number; mode: number; body: string }> =
      {};
    for await (const { entry, body } of readTar(chunks(tar, 333))) {
      let text = "";
      for await (const c of body()) text += c.toString();
      seen[memberPath(entry.path)] = {
        type: entry.type,
        linkname: entry.linkname,
        uid: entry.uid,
        mode: entry.mode,
        body: text,
      };
    }
    expect(seen[long]).toMatchObject({ type: "file", body: "deep" });
    expect(seen.link).toMatchObject({ type: "symlink", linkname: "exe" });
    expect(seen.exe?.uid ?? seen.hard?.uid).toBe(1234);
    // One of the two names holds the data, the other is a hard link to it.
    const [data, link] = seen.exe?.type === "file" ? ["exe", "hard"] : ["hard", "exe"];
    expect(seen[data]).toMatchObject({ type: "file", body: "#!/bin/sh\n", mode: 0o4755 });
    expect(seen[link]).toMatchObject({ type: "hardlink", linkname: `./${data}` });
  });

  it("refuses what is not a tar archive", async () => {
    const it = readTar(chunks(Buffer.alloc(2048, 7)));
    await expect(it.next()).rejects.toThrow(/not a tar archive/);
  });
});

describe("applyLayer", () => {
  const rootfs: TarMember[] = [
    { name: "a/", type: "dir" },
    { name: "a/keep", content: "keep" },
    { name: "a/gone", content: "gone" },
    { name: "opq/", type: "dir" },
    { name: "opq/old1", content: "1" },
    { name: "opq/sub/", type: "dir" },
    { name: "opq/sub/old2", content: "2" },
  ];

  it("applies OCI whiteouts and opaque dirs to lower layers only, never to the layer's own files", async () => {
    await apply(rootfs);
    await apply([
      { name: "a/.wh.gone", content: "" },
      { name: "opq/new-before-marker", content: "n" },
      { name: "opq/.wh..wh..opq", content: "" },
      { name: "opq/sub/", type: "dir" },
      { name: "opq/sub/new2", content: "n2" },
      { name: "b/same", content: "s" },
      { name: "b/.wh.same", content: "" },
    ]);
    expect(tree(root)).toEqual([
      "a",
      "a/keep",
      "b",
      "b/same",
      "opq",
      "opq/new-before-marker",
      "opq/sub",
      "opq/sub/new2",
    ]);
    expect(readFileSync(join(root, "a/keep"), "utf8")).toBe("keep");
  });

  it("applies overlayfs whiteouts (0/0 char devices) and opaque xattrs, and skips other devices", async () => {
    await apply(rootfs);
    const r = await apply(
      [
        { name: "a/gone", type: "char", devmajor: 0, devminor: 0 },
        { name: "opq/", type: "dir", xattrs: { "trusted.overlay.opaque": "y" } },
        { name: "opq/new", content: "n" },
        { name: "dev-null", type: "char", devmajor: 1, devminor: 3 },
        { name: "pipe", type: "fifo" },
      ],
      "overlay",
    );
    expect(tree(root)).toEqual(["a", "a/keep", "opq", "opq/new"]);
    expect(r.skipped).toBe(2);
  });

  it("writes .wh. files and devices of a plain root filesystem as they are (devices skipped)", async () => {
    await apply(
      [
        { name: "x/.wh.y", content: "" },
        { name: "zero", type: "char", devmajor: 1, devminor: 5 },
      ],
      "none",
    );
    expect(tree(root)).toEqual(["x", "x/.wh.y"]);
  });

  it("keeps modes, owners and setuid bits, and symlinks verbatim", async () => {
    await apply([
      { name: "bin/", type: "dir", mode: 0o755 },
      { name: "bin/su", content: "x", mode: 0o4755, uid: 0 },
      { name: "home/u/", type: "dir", mode: 0o700, uid: 1000, gid: 1000 },
      { name: "bin/sh", type: "symlink", linkname: "/usr/bin/dash" },
      { name: "bin/su2", type: "hardlink", linkname: "bin/su" },
    ]);
    expect(statSync(join(root, "bin/su")).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(root, "home/u")).uid).toBe(1000);
    expect(statSync(join(root, "home/u")).mode & 0o777).toBe(0o700);
    expect(readlinkSync(join(root, "bin/sh"))).toBe("/usr/bin/dash");
    expect(statSync(join(root, "bin/su2")).ino).toBe(statSync(join(root, "bin/su")).ino);
  });

  it("replaces a symlink with a file without writing through it", async () => {
    writeFileSync(join(outside, "victim"), "safe");
    await apply([{ name: "f", type: "symlink", linkname: join(outside, "victim") }]);
    await apply([{ name: "f", content: "new" }]);
    expect(readFileSync(join(outside, "victim"), "utf8")).toBe("safe");
    expect(lstatSync(join(root, "f")).isFile()).toBe(true);
  });

  const hostile: [string, TarMember[]][] = [
    ["a '..' member", [{ name: "../outside/x", content: "evil" }]],
    ["a deep '..' member", [{ name: "a/../../outside/x", content: "evil" }]],
    ["an absolute member", [{ name: "/tmp/berth-evil-absolute", content: "evil" }]],
    [
      "a file through a symlink",
      [
        { name: "link", type: "symlink", linkname: "../outside" },
        { name: "link/x", content: "evil" },
      ],
    ],
    [
      "a directory through an absolute symlink",
      [
        { name: "link", type: "symlink", linkname: "/tmp" },
        { name: "link/berth-evil-dir/", type: "dir" },
      ],
    ],
    ["a hard link to outside", [{ name: "h", type: "hardlink", linkname: "../outside/victim" }]],
    [
      "a hard link through a symlink",
      [
        { name: "link", type: "symlink", linkname: "../outside" },
        { name: "h", type: "hardlink", linkname: "link/victim" },
      ],
    ],
    [
      "a whiteout through a symlink",
      [
        { name: "link", type: "symlink", linkname: "../outside" },
        { name: "link/.wh.victim", content: "" },
      ],
    ],
  ];
  for (const [what, members] of hostile)
    it(`refuses ${what} and writes nothing outside`, async () => {
      writeFileSync(join(outside, "victim"), "safe");
      await expect(apply(members)).rejects.toBeInstanceOf(UnsafeArchiveError);
      expect(readdirSync(outside)).toEqual(["victim"]);
      expect(readFileSync(join(outside, "victim"), "utf8")).toBe("safe");
      expect(existsSync("/tmp/berth-evil-absolute")).toBe(false);
      expect(existsSync("/tmp/berth-evil-dir")).toBe(false);
    });

  it("refuses a file through a symlink a lower layer made", async () => {
    await apply([{ name: "etc", type: "symlink", linkname: outside }]);
    await expect(apply([{ name: "etc/passwd", content: "evil" }])).rejects.toThrow(/symlink 'etc'/);
    expect(readdirSync(outside)).toEqual([]);
  });

  it("stops at maxBytes", async () => {
    const big = makeTar([{ name: "big", content: Buffer.alloc(5000) }]);
    await expect(applyLayer(root, chunks(big), { whiteouts: "none", maxBytes: 4096 })).rejects.toThrow(
      /more than 4096 bytes/,
    );
  });
});

describe("prepareRootfs", () => {
  it("adds the sandbox user, its dirs and the mount points, replacing symlinks in the way", () => {
    mkdirSync(join(root, "etc"));
    writeFileSync(
      join(root, "etc/passwd"),
      "root:x:0:0::/root:/bin/sh\nnode:x:1001:1001::/home/node:/bin/sh",
    );
    symlinkSync(outside, join(root, "workspace"));
    symlinkSync(join(outside, "resolv"), join(root, "etc/resolv.conf"));
    prepareRootfs(root);
    const passwd = readFileSync(join(root, "etc/passwd"), "utf8");
    expect(passwd).toMatch(
      /\nnode:x:1001:1001::\/home\/node:\/bin\/sh\nuser:x:1000:1000:user:\/home\/user:\/bin\/sh\n$/,
    );
    expect(hasId(readFileSync(join(root, "etc/group"), "utf8"), 1000)).toBe(true);
    for (const d of ["home/user", "workspace"]) {
      const st = lstatSync(join(root, d));
      expect(st.isDirectory() && st.uid === 1000).toBe(true);
    }
    expect(lstatSync(join(root, "etc/resolv.conf")).isFile()).toBe(true);
    expect(lstatSync(join(root, ".berth/init")).isFile()).toBe(true);
    expect(statSync(join(root, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(readdirSync(outside)).toEqual([]);
    // An image that already has uid 1000 keeps its own name for it.
    writeFileSync(join(root, "etc/passwd"), "node:x:1000:1000::/home/node:/bin/sh\n");
    prepareRootfs(root);
    expect(readFileSync(join(root, "etc/passwd"), "utf8")).toBe("node:x:1000:1000::/home/node:/bin/sh\n");
  });
});

describe("image archives", () => {
  it("finds docker save layers in order and refuses layer paths outside the image", () => {
    mkdirSync(join(dir, "img/l1"), { recursive: true });
    mkdirSync(join(dir, "img/l2"));
    writeFileSync(join(dir, "img/l1/layer.tar"), "");
    writeFileSync(join(dir, "img/l2/layer.tar"), "");
    const manifest = (layers: string[]) =>
      writeFileSync(join(dir, "img/manifest.json"), JSON.stringify([{ RepoTags: ["t:1"], Layers: layers }]));
    manifest(["l2/layer.tar", "l1/layer.tar"]);
    const got = dockerSaveLayers(join(dir, "img"));
    expect(got.ref).toBe("t:1");
    expect(got.layers.map((l) => l.slice(dir.length))).toEqual(["/img/l2/layer.tar", "/img/l1/layer.tar"]);
    manifest(["../outside/x"]);
    expect(() => dockerSaveLayers(join(dir, "img"))).toThrow(ImageFormatError);
    symlinkSync("/etc/passwd", join(dir, "img/l1/evil.tar"));
    manifest(["l1/evil.tar"]);
    expect(() => dockerSaveLayers(join(dir, "img"))).toThrow(/not a file inside the image/);
  });

  it("follows an OCI index to this architecture's manifest and its layer blobs", () => {
    const img = join(dir, "oci");
    mkdirSync(join(img, "blobs/sha256"), { recursive: true });
    const blob = (hex: string, body: unknown) => {
      writeFileSync(join(img, "blobs/sha256", hex.repeat(64)), JSON.stringify(body));
      return `sha256:${hex.repeat(64)}`;
    };
    const layer = blob("c", {});
    const armManifest = blob("d", { layers: [] });
    const manifest = blob("b", {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      layers: [{ digest: layer }],
    });
    const index = blob("a", {
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        { digest: armManifest, platform: { os: "linux", architecture: "arm64" } },
        { digest: manifest, platform: { os: "linux", architecture: "amd64" } },
      ],
    });
    writeFileSync(join(img, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(
      join(img, "index.json"),
      JSON.stringify({
        manifests: [
          {
            mediaType: "application/vnd.oci.image.index.v1+json",
            digest: index,
            annotations: { "org.opencontainers.image.ref.name": "v1" },
          },
        ],
      }),
    );
    const got = ociLayoutLayers(img, "x64");
    expect(got.ref).toBe("v1");
    expect(got.layers).toEqual([join(img, "blobs/sha256", "c".repeat(64))]);
    writeFileSync(join(img, "index.json"), JSON.stringify({ manifests: [{ digest: "sha256:../../etc" }] }));
    expect(() => ociLayoutLayers(img)).toThrow(/bad digest/);
  });

  it("decompresses gzip layers by their magic bytes", async () => {
    const file = join(dir, "layer.tar.gz");
    writeFileSync(file, gzipSync(makeTar([{ name: "hello", content: "hi" }])));
    await applyLayer(root, openArchive(file), { whiteouts: "oci" });
    expect(readFileSync(join(root, "hello"), "utf8")).toBe("hi");
  });
});
