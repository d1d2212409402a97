import {
  closeSync,
  createReadStream,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
} from "node:fs";
import { join, sep } from "node:path";
import { createGunzip } from "node:zlib";
import { commandOutput } from "@berth/linux-host";
import { memberPath } from "./layer.js";

/** What an uploaded template archive is. */
export type ImageFormat = "rootfs" | "docker" | "oci";

/** An image archive whose manifests are missing, malformed or point outside the image. */
export class ImageFormatError extends Error {}

/** The layer files of an unpacked image, bottom layer first, and a name for where it came from. */
export interface ImageLayers {
  layers: string[];
  /** The image's tag or reference name, when the archive names one. */
  ref?: string;
}

/** `rel` inside the unpacked image at `dir`, as a regular file; symlinks may not lead out. */
function fileInside(dir: string, rel: string): string {
  let norm: string;
  try {
    norm = memberPath(rel);
  } catch {
    throw new ImageFormatError(`the manifest names '${rel}', which is outside the image`);
  }
  let real: string;
  try {
    real = realpathSync(join(dir, norm));
  } catch {
    throw new ImageFormatError(`the manifest names '${rel}', which is not in the archive`);
  }
  const top = realpathSync(dir);
  if (!real.startsWith(top + sep) || !statSync(real).isFile())
    throw new ImageFormatError(`the manifest names '${rel}', which is not a file inside the image`);
  return real;
}

function readJson(dir: string, rel: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(fileInside(dir, rel), "utf8"));
  } catch (err) {
    if (err instanceof ImageFormatError && /not in the archive/.test(err.message))
      throw new ImageFormatError(`${what} is missing`);
    if (err instanceof ImageFormatError) throw err;
    throw new ImageFormatError(`${what} is not valid JSON`);
  }
}

/**
 * The layers of a `docker save` archive (unpacked at `dir`): `manifest.json` lists, for each
 * image, its layer tars in order. The first image is taken.
 */
export function dockerSaveLayers(dir: string): ImageLayers {
  const manifest = readJson(dir, "manifest.json", "manifest.json (a docker save archive has one)");
  const first = Array.isArray(manifest)
    ? (manifest[0] as { Layers?: unknown; RepoTags?: unknown })
    : undefined;
  if (!first || !Array.isArray(first.Layers) || !first.Layers.every((l) => typeof l === "string"))
    throw new ImageFormatError("manifest.json does not list the image's Layers");
  const tags = Array.isArray(first.RepoTags) ? first.RepoTags.filter((t) => typeof t === "string") : [];
  return { layers: (first.Layers as string[]).map((l) => fileInside(dir, l)), ref: tags[0] };
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string };
  annotations?: Record<string, string>;
}

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);
const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
};

function blobPath(dir: string, digest: unknown): string {
  const m = typeof digest === "string" ? /^(sha256|sha512):([a-f0-9]{64,128})$/.exec(digest) : null;
  if (!m) throw new ImageFormatError(`bad digest '${String(digest).slice(0, 80)}' in the image`);
  return fileInside(dir, `blobs/${m[1]}/${m[2]}`);
}

/**
 * The layers of an OCI image layout (unpacked at `dir`): `index.json` -> (an image index, whose
 * manifest for this machine's architecture is taken, or the first) -> an image manifest, whose
 * `layers` are blobs.
 */
export function ociLayoutLayers(dir: string, arch: string = process.arch): ImageLayers {
  readJson(dir, "oci-layout", "oci-layout (an OCI image layout has one)");
  let index = readJson(dir, "index.json", "index.json") as { manifests?: Descriptor[] };
  let ref: string | undefined;
  for (let depth = 0; depth < 4; depth++) {
    const list = Array.isArray(index.manifests) ? index.manifests : [];
    if (list.length === 0) throw new ImageFormatError("the image index lists no manifests");
    const want = ARCH[arch] ?? arch;
    const pick =
      list.find((d) => d.platform?.os === "linux" && d.platform.architecture === want) ??
      list.find((d) => !d.platform) ??
      (list[0] as Descriptor);
    ref ??=
      pick.annotations?.["org.opencontainers.image.ref.name"] ??
      pick.annotations?.["io.containerd.image.name"];
    const doc = JSON.parse(readFileSync(blobPath(dir, pick.digest), "utf8")) as {
      mediaType?: string;
      manifests?: Descriptor[];
      layers?: Descriptor[];
    };
    if (INDEX_TYPES.has(pick.mediaType ?? "") || (doc.manifests && !doc.layers)) {
      index = doc;
      continue;
    }
    if (!Array.isArray(doc.layers)) throw new ImageFormatError("the image manifest lists no layers");
    return { layers: doc.layers.map((l) => blobPath(dir, l.digest)), ref };
  }
  throw new ImageFormatError("image indexes nest too deeply");
}

/**
 * The tar stream of a layer or archive file, decompressed by what its first bytes say: gzip
 * (zlib), zstd or xz (their tools), or a plain tar.
 */
export async function* openArchive(file: string): AsyncGenerator<Buffer> {
  const head = Buffer.alloc(6);
  const fd = openSync(file, "r");
  let n: number;
  try {
    n = readSync(fd, head, 0, 6, 0);
  } finally {
    closeSync(fd);
  }
  const magic = head.subarray(0, n);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    yield* createReadStream(file).pipe(createGunzip()) as AsyncIterable<Buffer>;
    return;
  }
  const tool =
    n >= 4 && magic.readUInt32BE(0) === 0x28b52ffd
      ? "zstd"
      : magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
        ? "xz"
        : magic.subarray(0, 3).toString("latin1") === "BZh"
          ? "bzip2"
          : null;
  if (!tool) {
    yield* createReadStream(file) as AsyncIterable<Buffer>;
    return;
  }
  yield* decompressWith(tool, file);
}

function decompressWith(tool: string, file: string): AsyncGenerator<Buffer> {
  // stderr is dropped: it names host paths, and the tool's exit code is all the caller needs.
  return commandOutput(tool, ["-d", "-c", "--", file], (code) => {
    if (code === -1)
      throw new ImageFormatError(`the archive is ${tool}-compressed and ${tool} is not installed`);
    if (code !== 0) throw new ImageFormatError(`the ${tool}-compressed data is corrupt or truncated`);
  });
}
