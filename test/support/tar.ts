/**
 * A tiny tar writer for tests: members exactly as given (hostile names included, which tar(1)
 * refuses to write), with pax records for long names and xattrs.
 */

export interface TarMember {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "fifo";
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", char: "3", dir: "5", fifo: "6" } as const;

function octal(n: number, len: number): string {
  return `${n.toString(8).padStart(len - 1, "0")}\0`;
}

function header(name: string, flag: string, size: number, m: TarMember): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write(octal(m.mode ?? (flag === "5" ? 0o755 : 0o644), 8), 100, "ascii");
  h.write(octal(m.uid ?? 0, 8), 108, "ascii");
  h.write(octal(m.gid ?? 0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(1_700_000_000, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(flag, 156, "ascii");
  h.write((m.linkname ?? "").slice(0, 100), 157, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(octal(m.devmajor ?? 0, 8), 329, "ascii");
  h.write(octal(m.devminor ?? 0, 8), 337, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

function pad(b: Buffer): Buffer[] {
  const rest = b.length % 512;
  return rest === 0 ? [b] : [b, Buffer.alloc(512 - rest)];
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (`${len}${body}`.length !== len) len = `${len}${body}`.length;
  return `${len}${body}`;
}

/** A tar archive of `members`, in order, with its end marker. */
export function makeTar(members: TarMember[]): Buffer {
  const out: Buffer[] = [];
  for (const m of members) {
    const type = m.type ?? "file";
    const flag = TYPEFLAG[type];
    const data = type === "file" ? Buffer.from(m.content ?? "") : Buffer.alloc(0);
    const records: string[] = [];
    if (Buffer.byteLength(m.name) > 100) records.push(paxRecord("path", m.name));
    if ((m.linkname ?? "").length > 100) records.push(paxRecord("linkpath", m.linkname ?? ""));
    for (const [k, v] of Object.entries(m.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
    if (records.length > 0) {
      const pax = Buffer.from(records.join(""));
      out.push(header("PaxHeader", "x", pax.length, {}), ...pad(pax));
    }
    out.push(header(m.name, flag, data.length, m), ...pad(data));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}
