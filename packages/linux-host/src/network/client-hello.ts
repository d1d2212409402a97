/**
 * The server name (SNI) of a TLS ClientHello, read without terminating TLS. Returns undefined
 * while more bytes are needed, null when the record is not a ClientHello or has no SNI.
 */
export function readSni(buf: Buffer): string | null | undefined {
  if (buf.length < 5) return undefined;
  if (buf[0] !== 0x16) return null; // not a handshake record
  const recordLen = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLen) return undefined;
  let p = 5;
  if (buf[p] !== 0x01) return null; // not ClientHello
  p += 4; // type + 24-bit length
  p += 2 + 32; // version, random
  const end = 5 + recordLen;
  const skip = (lenBytes: 1 | 2) => {
    if (p + lenBytes > end) return false;
    const n = lenBytes === 1 ? buf[p]! : buf.readUInt16BE(p);
    p += lenBytes + n;
    return p <= end;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return null; // session id, cipher suites, compression
  if (p + 2 > end) return null;
  const extEnd = p + 2 + buf.readUInt16BE(p);
  p += 2;
  while (p + 4 <= Math.min(extEnd, end)) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (type === 0 && p + 5 <= end) {
      // server_name list: u16 list length, u8 name type (0 = host_name), u16 name length, name
      const nameLen = buf.readUInt16BE(p + 3);
      if (buf[p + 2] !== 0 || p + 5 + nameLen > end) return null;
      return buf
        .subarray(p + 5, p + 5 + nameLen)
        .toString("ascii")
        .toLowerCase();
    }
    p += len;
  }
  return null;
}
