/**
 * The requests in a client's HTTP/1 byte stream, one after another on a kept-alive connection:
 * the egress proxy must see every request's head (each names its host), not only the first.
 * Framing follows RFC 9112 (Content-Length, chunked) and refuses what servers could read two
 * ways (request smuggling): both framings at once, unequal lengths, obsolete line folding, bare
 * CR or LF, more than one Host, an absolute target naming another host.
 */

/** What the proxy checks of one request. */
export interface RequestHead {
  method: string;
  /** The Host header's name: lowercase, without port, brackets or a trailing dot. */
  host: string | null;
}

/** What a chunk of the client's stream held, in order. */
export type RequestEvent =
  | { type: "head"; head: RequestHead; bytes: Buffer }
  | { type: "bytes"; bytes: Buffer }
  | { type: "bad"; why: string };

const MAX_HEAD = 16 * 1024;
const MAX_LINE = 4 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/;

type State =
  | { s: "head" }
  | { s: "fixed"; left: number }
  | { s: "chunk-size" }
  | { s: "chunk-data"; left: number }
  | { s: "chunk-end" }
  | { s: "trailers" }
  /** After a request asking to upgrade: HTTP again, or (bytes that are no request) a tunnel. */
  | { s: "upgraded?" }
  | { s: "tunnel" }
  | { s: "broken" };

/** Splits a client's stream into request heads and the bytes between them. */
export class RequestStream {
  private state: State = { s: "head" };
  private buf: Buffer = Buffer.alloc(0);
  private upgrade = false;

  /** Feeds the next bytes; returns what they held (a head once it is complete). */
  push(chunk: Buffer): RequestEvent[] {
    const out: RequestEvent[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length > 0 && this.state.s !== "broken") {
      const st = this.state;
      if (st.s === "tunnel") {
        out.push({ type: "bytes", bytes: this.take(this.buf.length) });
      } else if (st.s === "upgraded?") {
        // An upgraded connection's first byte (a WebSocket frame: 0x8X, 0x0X) is never a
        // token character or CR/LF; anything a server could read as a request is parsed as one.
        this.state = /[A-Za-z0-9!#$%&'*+.^_`|~\r\n-]/.test(String.fromCharCode(this.buf[0]!))
          ? { s: "head" }
          : { s: "tunnel" };
      } else if (st.s === "fixed" || st.s === "chunk-data") {
        const n = Math.min(st.left, this.buf.length);
        out.push({ type: "bytes", bytes: this.take(n) });
        st.left -= n;
        if (st.left === 0) this.state = st.s === "fixed" ? this.afterMessage() : { s: "chunk-end" };
      } else if (st.s === "chunk-end") {
        if (this.buf.length < 2) break;
        if (this.buf[0] !== 13 || this.buf[1] !== 10) return this.fail(out, "a chunk not ended by CRLF");
        out.push({ type: "bytes", bytes: this.take(2) });
        this.state = { s: "chunk-size" };
      } else if (st.s === "chunk-size" || st.s === "trailers") {
        const end = this.buf.indexOf("\r\n");
        if (end < 0) {
          if (this.buf.length > MAX_LINE) return this.fail(out, "a chunk line too long");
          break;
        }
        const line = this.buf.subarray(0, end).toString("latin1");
        if (/[\r\n\0]/.test(line)) return this.fail(out, "a bare CR or LF in a chunk line");
        out.push({ type: "bytes", bytes: this.take(end + 2) });
        if (st.s === "trailers") {
          if (line === "") this.state = this.afterMessage();
          continue;
        }
        const m = /^([0-9a-fA-F]{1,8})(;.*)?$/.exec(line);
        if (!m) return this.fail(out, "a bad chunk size");
        const size = Number.parseInt(m[1]!, 16);
        this.state = size === 0 ? { s: "trailers" } : { s: "chunk-data", left: size };
      } else {
        const end = this.buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) return this.fail(out, "a request head too large");
          break;
        }
        if (end + 4 > MAX_HEAD) return this.fail(out, "a request head too large");
        const bytes = this.take(end + 4);
        const parsed = parseHead(bytes.toString("latin1", 0, end));
        if ("bad" in parsed) return this.fail(out, parsed.bad);
        out.push({ type: "head", head: parsed.head, bytes });
        this.upgrade = parsed.upgrade;
        this.state =
          parsed.body === "chunked"
            ? { s: "chunk-size" }
            : parsed.body > 0
              ? { s: "fixed", left: parsed.body }
              : this.afterMessage();
      }
    }
    return out;
  }

  private afterMessage(): State {
    const next: State = this.upgrade ? { s: "upgraded?" } : { s: "head" };
    this.upgrade = false;
    return next;
  }

  private take(n: number): Buffer {
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  private fail(out: RequestEvent[], why: string): RequestEvent[] {
    this.state = { s: "broken" };
    out.push({ type: "bad", why });
    return out;
  }
}

/** A request head (without its final CRLFCRLF): the host it names and how its body is framed. */
export function parseHead(
  text: string,
): { head: RequestHead; body: number | "chunked"; upgrade: boolean } | { bad: string } {
  // Empty lines before a request line are allowed (RFC 9112 2.2).
  const lines = text.replace(/^(\r\n)+/, "").split("\r\n");
  if (lines.some((l) => /[\r\n\0]/.test(l))) return { bad: "a bare CR, LF or NUL in the request head" };
  const m = REQUEST_LINE.exec(lines[0] ?? "");
  if (!m) return { bad: "not an HTTP/1 request line" };
  const method = m[1]!;
  const target = m[2]!;
  if (method === "CONNECT") return { bad: "CONNECT is not forwarded" };
  const hosts: string[] = [];
  const lengths: string[] = [];
  const encodings: string[] = [];
  let upgrade = false;
  for (const line of lines.slice(1)) {
    if (/^[ \t]/.test(line)) return { bad: "a folded header line" };
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) return { bad: "a malformed header line" };
    const value = line.slice(colon + 1).trim();
    const key = name.toLowerCase();
    if (key === "host") hosts.push(value);
    else if (key === "content-length") lengths.push(...value.split(",").map((v) => v.trim()));
    else if (key === "transfer-encoding")
      encodings.push(...value.split(",").map((v) => v.trim().toLowerCase()));
    else if (key === "upgrade") upgrade = true;
  }
  if (hosts.length > 1) return { bad: "more than one Host header" };
  const host = hosts[0] === undefined ? null : hostName(hosts[0]);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return { bad: "a malformed absolute request target" };
    }
    if (hostName(url.host) !== host) return { bad: "the request target names another host than Host" };
  }
  if (encodings.length > 0) {
    if (lengths.length > 0) return { bad: "both Content-Length and Transfer-Encoding" };
    if (encodings.length !== 1 || encodings[0] !== "chunked")
      return { bad: "a Transfer-Encoding other than chunked" };
    return { head: { method, host }, body: "chunked", upgrade };
  }
  if (lengths.length > 0) {
    if (lengths.some((l) => !/^\d{1,15}$/.test(l)) || new Set(lengths.map(Number)).size !== 1)
      return { bad: "a bad Content-Length" };
    return { head: { method, host }, body: Number(lengths[0]), upgrade };
  }
  return { head: { method, host }, body: 0, upgrade };
}

/** A Host value as a name: lowercase, without port, brackets or trailing dot; null when empty. */
function hostName(value: string): string | null {
  const name = value
    .trim()
    .replace(/:\d*$/, "")
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  return name || null;
}
