/**
 * A streaming reader of tar archives (ustar, GNU long names, pax headers), written here rather
 * than run through tar(1) because image layers come from users: the caller decides what each
 * member may do before a byte of it is written (see `layer.ts`). Member contents are never
 * buffered whole.
 */

/** What a member is. Anything else (sockets, volume labels, ...) is `other`. */
export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other";

/** One member's header, after any pax or GNU long-name records that came before it. */
export interface TarEntry {
  /** The name exactly as archived (not yet checked or normalised). */
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  size: number;
  /** Symlink target, or the archived name a hard link points to. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.*` records (values as latin1 strings). */
  xattrs: Record<string, string>;
}

/** A tar archive that cannot be read (bad checksum, truncated, unsupported member kind). */
export class TarFormatError extends Error {}

const BLOCK = 512;

/**
 * Exact-size reads over an async stream of chunks: headers are taken 512 bytes at a time and
 * member contents handed on chunk by chunk.
 */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(source: AsyncIterable<Buffer | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else {
        const b = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
        if (b.length > 0) {
          this.chunks.push(b);
          this.buffered += b.length;
        }
      }
    }
  }

  /** Exactly `n` bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const out: Buffer[] = [];
    let want = Math.min(n, this.buffered);
    while (want > 0) {
      const head = this.chunks[0] as Buffer;
      const take = Math.min(want, head.length);
      out.push(head.subarray(0, take));
      if (take === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(take);
      this.buffered -= take;
      want -= take;
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** The next `n` bytes as they arrive (at most one buffered chunk at a time). */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) await this.fill(1);
      if (this.buffered === 0) throw new TarFormatError("the archive ends in the middle of a member");
      const head = this.chunks[0] as Buffer;
      const take = Math.min(left, head.length);
      if (take === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(take);
      this.buffered -= take;
      left -= take;
      yield head.subarray(0, take);
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discarded
    }
  }

  /** Drains whatever is left (trailing zero blocks and padding). */
  async rest(): Promise<void> {
    while (!this.ended || this.buffered > 0) {
      this.chunks = [];
      this.buffered = 0;
      await this.fill(1);
    }
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return (nul < 0 ? field : field.subarray(0, nul)).toString("utf8");
}

/** A numeric header field: octal ASCII, or GNU base-256 when the top bit of the first byte is set. */
export function parseNumber(b: Buffer, start: number, len: number): number {
  const field = b.subarray(start, start + len);
  if (((field[0] as number) & 0x80) !== 0) {
    if (((field[0] as number) & 0x40) !== 0) throw new TarFormatError("negative number in a tar header");
    let v = (field[0] as number) & 0x3f;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    if (!Number.isSafeInteger(v)) throw new TarFormatError("number too large in a tar header");
    return v;
  }
  const text = cstring(b, start, len).replace(/ +$/, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`bad number '${text}' in a tar header`);
  return Number.parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumber(h, 148, 8);
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

/** Parses pax extended header records (`<len> <key>=<value>\n`). */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(at, space).toString("ascii"), 10);
    if (!Number.isFinite(len) || len <= 0 || at + len > data.length)
      throw new TarFormatError("bad pax header record");
    const record = data.subarray(space + 1, at + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) {
      const key = record.subarray(0, eq).toString("utf8");
      // xattr values are bytes; latin1 keeps each byte as one char.
      const value = record.subarray(eq + 1).toString(key.startsWith("SCHILY.xattr.") ? "latin1" : "utf8");
      out[key] = value;
    }
    at += len;
  }
  return out;
}

/** Largest pax or long-name record accepted (they are held in memory). */
const MAX_META = 1024 * 1024;

/**
 * The members of a tar stream, in order. The consumer reads a member's contents with `body()`
 * before asking for the next member; anything it leaves unread is skipped.
 */
export async function* readTar(
  source: AsyncIterable<Buffer | string>,
): AsyncGenerator<{ entry: TarEntry; body: () => AsyncGenerator<Buffer> }> {
  const r = new ByteReader(source);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let sawHeader = false;
  for (;;) {
    const h = await r.read(BLOCK);
    if (h.length === 0 && sawHeader) throw new TarFormatError("the archive has no end marker");
    if (h.length === 0) throw new TarFormatError("the archive is empty");
    if (h.length < BLOCK) throw new TarFormatError("the archive ends in the middle of a header");
    if (h.every((byte) => byte === 0)) {
      await r.rest();
      return;
    }
    if (!checksumOk(h)) throw new TarFormatError(sawHeader ? "bad tar header checksum" : "not a tar archive");
    sawHeader = true;
    const flag = String.fromCharCode(h[156] as number);
    const size = parseNumber(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_META) throw new TarFormatError("tar metadata record too large");
      const data = (await r.read(padded)).subarray(0, size);
      if (data.length < size) throw new TarFormatError("the archive ends in the middle of a member");
      if (flag === "x") pax = { ...pax, ...parsePax(data) };
      else if (flag === "L") longName = cstring(data, 0, data.length);
      else if (flag === "K") longLink = cstring(data, 0, data.length);
      // `g` (global pax) records are ignored: nothing in them changes what a member is.
      continue;
    }
    if (flag === "S" || pax["GNU.sparse.major"] !== undefined || pax["GNU.sparse.size"] !== undefined)
      throw new TarFormatError("sparse files are not supported in image archives");
    const magic = h.subarray(257, 263).toString("latin1");
    const prefix = magic === "ustar\0" ? cstring(h, 345, 155) : "";
    let path = cstring(h, 0, 100);
    if (prefix) path = `${prefix}/${path}`;
    path = pax.path ?? longName ?? path;
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(pax))
      if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = v;
    const realSize = pax.size !== undefined ? Number(pax.size) : size;
    if (!Number.isSafeInteger(realSize) || realSize < 0) throw new TarFormatError("bad member size");
    const type = TYPES[flag] ?? "other";
    const entry: TarEntry = {
      path,
      type,
      mode: parseNumber(h, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : parseNumber(h, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : parseNumber(h, 116, 8),
      mtime: Math.floor(pax.mtime !== undefined ? Number(pax.mtime) : parseNumber(h, 136, 12)),
      size: type === "file" ? realSize : 0,
      linkname: pax.linkpath ?? longLink ?? cstring(h, 157, 100),
      devmajor: type === "char" || type === "block" ? parseNumber(h, 329, 8) : 0,
      devminor: type === "char" || type === "block" ? parseNumber(h, 337, 8) : 0,
      xattrs,
    };
    if (
      !Number.isSafeInteger(entry.uid) ||
      !Number.isSafeInteger(entry.gid) ||
      entry.uid < 0 ||
      entry.gid < 0
    )
      throw new TarFormatError("bad owner in a tar header");
    if (!Number.isFinite(entry.mtime)) entry.mtime = 0;
    pax = {};
    longName = undefined;
    longLink = undefined;
    // As libarchive reads them: symlinks, dirs, devices and fifos never have data blocks;
    // a hard link may (pax), and its data is skipped.
    const dataSize = type === "file" || type === "hardlink" || type === "other" ? realSize : 0;
    let started = false;
    let read = 0;
    const body = async function* () {
      if (started) throw new Error("a member's contents can be read once");
      started = true;
      for await (const chunk of r.stream(entry.size)) {
        read += chunk.length;
        yield chunk;
      }
    };
    yield { entry, body };
    await r.skip(dataSize - read);
    const pad = Math.ceil(dataSize / BLOCK) * BLOCK - dataSize;
    if (pad > 0) await r.skip(pad);
  }
}
