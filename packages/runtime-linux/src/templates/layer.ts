import {
  chmodSync,
  constants,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { join, posix } from "node:path";
import { readTar, type TarEntry } from "./tar-reader.js";

/**
 * How deletions are written in a layer: `oci` (`.wh.NAME` files and `.wh..wh..opq` markers, as in
 * OCI and `docker save` layers), `overlay` (an overlayfs upper dir: 0/0 character devices and the
 * `trusted.overlay.opaque` xattr), or `none` (a plain root filesystem: nothing is special).
 */
export type WhiteoutStyle = "oci" | "overlay" | "none";

/** An archive member that would write outside the target or through a symlink: refused whole. */
export class UnsafeArchiveError extends Error {}

export interface ApplyLayerOptions {
  whiteouts: WhiteoutStyle;
  /** Normalised member paths to leave out (their whiteouts too). */
  exclude?: (rel: string) => boolean;
  /** Largest total of file contents written, in bytes (a decompression bomb stops here). */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** What applying a layer did. */
export interface ApplyLayerResult {
  entries: number;
  bytes: number;
  /** Device nodes, fifos and other special members, which are never created. */
  skipped: number;
}

const OPAQUE = ".wh..wh..opq";
const WH = ".wh.";

/**
 * A member name made relative to the root: `./` and empty parts go, absolute names and any `..`
 * part are refused (not rewritten: an archive that holds them is hostile or broken). `""` is the
 * root itself.
 */
export function memberPath(name: string): string {
  if (name.startsWith("/")) throw new UnsafeArchiveError(`member '${name}' has an absolute path`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnsafeArchiveError(`member '${name}' has a '..' in its path`);
  return parts.join("/");
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/**
 * Unpacks one layer (a tar stream) into `root`, on top of what earlier layers left there.
 *
 * Safety does not depend on the archive: every parent directory of a member is checked with
 * lstat to be a real directory (a member through a symlink, from this or an earlier layer, is
 * refused), the member's own path is unlinked before it is created, files are opened with
 * O_EXCL|O_NOFOLLOW, and hard links may only point at members inside the root. Symlinks are
 * written as they are (their targets are only ever followed inside a sandbox). Device nodes and
 * fifos are skipped. Nothing else writes to `root` meanwhile (a private temp dir), so the checks
 * cannot be raced.
 *
 * Whiteouts hide what lower layers put there, never what this layer itself wrote (OCI image spec).
 */
export async function applyLayer(
  root: string,
  source: AsyncIterable<Buffer | string>,
  o: ApplyLayerOptions,
): Promise<ApplyLayerResult> {
  const layer = new LayerWriter(root, o);
  for await (const { entry, body } of readTar(source)) {
    if (o.signal?.aborted) throw new Error("aborted");
    await layer.apply(entry, body);
  }
  layer.finish();
  return layer.result;
}

class LayerWriter {
  readonly result: ApplyLayerResult = { entries: 0, bytes: 0, skipped: 0 };
  /** Paths this layer wrote, and their parents: whiteouts and opaque markers spare them. */
  private readonly written = new Set<string>();
  /** Directory mtimes, set last (writing children changes them). */
  private readonly dirTimes: [string, number][] = [];

  constructor(
    private readonly root: string,
    private readonly o: ApplyLayerOptions,
  ) {}

  async apply(e: TarEntry, body: () => AsyncGenerator<Buffer>): Promise<void> {
    const rel = memberPath(e.path);
    if (rel !== "" && this.o.exclude?.(rel)) return;
    this.result.entries++;
    const base = posix.basename(rel);
    if (this.o.whiteouts === "oci" && base.startsWith(WH)) {
      const dir = posix.dirname(rel) === "." ? "" : posix.dirname(rel);
      if (base === OPAQUE) this.opaque(dir);
      else {
        const hidden = base.slice(WH.length);
        if (hidden === "" || hidden === "." || hidden === "..")
          throw new UnsafeArchiveError(`member '${e.path}' is a whiteout of nothing`);
        this.whiteout(dir ? `${dir}/${hidden}` : hidden);
      }
      return;
    }
    if (this.o.whiteouts === "overlay") {
      if (e.type === "char" && e.devmajor === 0 && e.devminor === 0) {
        this.whiteout(rel);
        return;
      }
      if (
        e.xattrs["trusted.overlay.redirect"] !== undefined ||
        e.xattrs["trusted.overlay.metacopy"] !== undefined
      )
        throw new UnsafeArchiveError(
          `'${rel}' is an overlayfs redirect or metacopy entry, which is not supported`,
        );
    }
    if (rel === "") {
      if (e.type !== "dir") throw new UnsafeArchiveError(`member '${e.path}' would replace the root`);
      this.setAttrs(this.root, e);
      return;
    }
    if (e.type === "char" || e.type === "block" || e.type === "fifo" || e.type === "other") {
      this.result.skipped++;
      return;
    }
    const abs = this.parentsOf(rel, true);
    const existing = lstatOrNull(abs);
    if (e.type === "dir") {
      if (!existing?.isDirectory()) {
        if (existing) unlinkSync(abs);
        mkdirSync(abs, { mode: 0o700 });
      }
      this.setAttrs(abs, e);
      this.dirTimes.push([abs, e.mtime]);
      this.mark(rel);
      if (this.o.whiteouts === "overlay" && e.xattrs["trusted.overlay.opaque"] === "y") this.opaque(rel);
      return;
    }
    if (existing) rmSync(abs, { recursive: existing.isDirectory(), force: true });
    if (e.type === "symlink") {
      symlinkSync(e.linkname, abs);
      lchownSync(abs, e.uid, e.gid);
      lutimesSync(abs, e.mtime, e.mtime);
    } else if (e.type === "hardlink") {
      const target = memberPath(e.linkname);
      if (target === "") throw new UnsafeArchiveError(`hard link '${e.path}' points at the root`);
      const from = this.parentsOf(target, false);
      const st = lstatOrNull(from);
      if (!st || st.isDirectory())
        throw new UnsafeArchiveError(
          `hard link '${e.path}' points at '${e.linkname}', which is not a file here`,
        );
      linkSync(from, abs);
    } else await this.writeFile(abs, e, body);
    this.mark(rel);
  }

  /** Sets dir mtimes, deepest first (lutimes: a later member may have replaced a dir by a symlink). */
  finish(): void {
    for (const [abs, mtime] of this.dirTimes.reverse()) if (lstatOrNull(abs)) lutimesSync(abs, mtime, mtime);
  }

  private async writeFile(abs: string, e: TarEntry, body: () => AsyncGenerator<Buffer>): Promise<void> {
    const max = this.o.maxBytes ?? Number.POSITIVE_INFINITY;
    if (this.result.bytes + e.size > max)
      throw new UnsafeArchiveError(`the image unpacks to more than ${max} bytes`);
    const fh = await open(
      abs,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      for await (const chunk of body()) await fh.write(chunk);
      // Owner first: chown clears the setuid and setgid bits that chmod then sets.
      await fh.chown(e.uid, e.gid);
      await fh.chmod(e.mode);
      await fh.utimes(e.mtime, e.mtime);
    } finally {
      await fh.close();
    }
    this.result.bytes += e.size;
  }

  private setAttrs(abs: string, e: TarEntry): void {
    lchownSync(abs, e.uid, e.gid);
    chmodSync(abs, e.mode);
  }

  /**
   * The absolute path of `rel`, after checking that every parent is a real directory inside the
   * root (made when missing if `create`). A symlink on the way is refused.
   */
  private parentsOf(rel: string, create: boolean): string {
    const parts = rel.split("/");
    let cur = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      cur = join(cur, parts[i] as string);
      const st = lstatOrNull(cur);
      const name = parts.slice(0, i + 1).join("/");
      if (st?.isSymbolicLink())
        throw new UnsafeArchiveError(`member '${rel}' goes through the symlink '${name}'`);
      if (st?.isDirectory()) continue;
      if (!create) throw new UnsafeArchiveError(`'${rel}' is not inside a directory of the archive`);
      if (st) unlinkSync(cur);
      mkdirSync(cur, { mode: 0o755 });
      this.mark(name);
    }
    return join(cur, parts[parts.length - 1] as string);
  }

  private mark(rel: string): void {
    let p = rel;
    while (p && p !== "." && !this.written.has(p)) {
      this.written.add(p);
      p = posix.dirname(p);
    }
  }

  /** Removes what lower layers put at `rel` (unless this layer wrote it). */
  private whiteout(rel: string): void {
    if (this.written.has(rel)) return;
    const abs = this.existingPath(rel);
    if (abs) rmSync(abs, { recursive: true, force: true });
  }

  /** Removes everything lower layers put in `dir`, keeping what this layer wrote there. */
  private opaque(dir: string): void {
    const abs = dir === "" ? this.root : this.existingPath(dir);
    if (!abs || !lstatSync(abs).isDirectory()) return;
    for (const name of readdirSync(abs)) {
      const rel = dir ? `${dir}/${name}` : name;
      const child = join(abs, name);
      if (!this.written.has(rel)) rmSync(child, { recursive: true, force: true });
      else if (lstatSync(child).isDirectory()) this.opaque(rel);
    }
  }

  /** `rel` if it exists below real directories; null when it does not exist. */
  private existingPath(rel: string): string | null {
    const parts = rel.split("/");
    let cur = this.root;
    for (let i = 0; i < parts.length; i++) {
      cur = join(cur, parts[i] as string);
      const st = lstatOrNull(cur);
      if (!st) return null;
      if (i < parts.length - 1 && st.isSymbolicLink())
        throw new UnsafeArchiveError(
          `whiteout '${rel}' goes through the symlink '${parts.slice(0, i + 1).join("/")}'`,
        );
      if (i < parts.length - 1 && !st.isDirectory()) return null;
    }
    return cur;
  }
}
