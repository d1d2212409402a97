/**
 * What Berth's resolver accepts from a sandbox and what it hands back: pure checks on DNS
 * messages. A query is forwarded only as one question that the resolver builds itself, so
 * nothing a sandbox adds (more questions, records in any other section) reaches the upstream;
 * of an answer, only records of the asked name and of the CNAME chain that starts at it count.
 */
import dnsPacket, { type Answer, type Packet, type Question } from "dns-packet";

/** DNS response codes the resolver sends (the low 4 bits of the flags). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

/** Types a sandbox may ask for: data lookups, not zone transfers, ANY or meta types. */
const QUERY_TYPES = new Set([
  "A",
  "AAAA",
  "CNAME",
  "TXT",
  "MX",
  "SRV",
  "PTR",
  "NS",
  "SOA",
  "CAA",
  "NAPTR",
  "DS",
  "DNSKEY",
  "TLSA",
  "SSHFP",
  "HTTPS",
  "SVCB",
]);
/** Letters, digits, `-` and `_` in dot-separated labels: what a hostname (or a SRV/PTR name) is. */
const NAME = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?$/i;
const MAX_QUERY_BYTES = 512;
/** Longest CNAME chain followed from the asked name. */
const MAX_CHAIN = 8;

/** A query that may be forwarded: its one question, and whether the client speaks EDNS. */
export interface ValidQuery {
  id: number;
  question: Question;
  edns: boolean;
  recursionDesired: boolean;
}

/** A query refused without asking upstream (`id` null: too broken to answer at all). */
export interface RefusedQuery {
  id: number | null;
  rcode: Rcode;
  why: string;
}

/**
 * Checks a sandbox's datagram: a standard query (QR=0, opcode QUERY) of exactly one question,
 * class IN, of a data type, with a hostname-shaped name, and no record in any other section but
 * one EDNS OPT. Anything else is refused; a datagram that is not a query gets no answer at all.
 */
export function checkQuery(msg: Buffer): ValidQuery | RefusedQuery {
  if (msg.length < 12) return { id: null, rcode: "FORMERR", why: "shorter than a DNS header" };
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return { id: null, rcode: "FORMERR", why: "a response, not a query" };
  if (msg.length > MAX_QUERY_BYTES) return { id, rcode: "FORMERR", why: "longer than a query can be" };
  if (((flags >> 11) & 0xf) !== 0) return { id, rcode: "NOTIMP", why: "only standard queries" };
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o)) as [number, number, number, number];
  if (qd !== 1) return { id, rcode: "FORMERR", why: `${qd} questions (one per query)` };
  if (an !== 0 || ns !== 0 || ar > 1) return { id, rcode: "FORMERR", why: "records besides the question" };
  let q: Packet;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return { id, rcode: "FORMERR", why: "not a DNS message" };
  }
  const extra = q.additionals ?? [];
  if (extra.length > 0 && (extra[0]?.type !== "OPT" || extra[0].name !== "."))
    return { id, rcode: "FORMERR", why: "an additional record that is not EDNS" };
  const question = q.questions?.[0];
  if (!question) return { id, rcode: "FORMERR", why: "no question" };
  if ((question.class ?? "IN") !== "IN") return { id, rcode: "REFUSED", why: "class other than IN" };
  if (!QUERY_TYPES.has(question.type)) return { id, rcode: "REFUSED", why: `type ${question.type}` };
  if (question.name.length > 253 || !NAME.test(question.name))
    return { id, rcode: "REFUSED", why: "not a hostname" };
  return {
    id,
    question: { type: question.type, name: question.name, class: "IN" },
    edns: extra.length === 1,
    recursionDesired: Boolean(flags & 0x0100),
  };
}

/** The one-question query the resolver sends upstream in a sandbox's stead. */
export function upstreamQuery(id: number, q: ValidQuery): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [q.question],
    additionals: q.edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as Answer] : [],
  });
}

/** True when `answer` is the upstream's response to the query of `id` and `question`. */
export function answers(answer: Packet, id: number, question: Question): boolean {
  const a = answer.questions?.[0];
  return (
    answer.type === "response" &&
    answer.id === id &&
    answer.questions?.length === 1 &&
    a !== undefined &&
    a.type === question.type &&
    norm(a.name) === norm(question.name)
  );
}

/** A name as compared: lowercase, without the root's trailing dot. */
export function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * The names an answer may speak for: the asked name and the CNAME chain from it (each name's
 * first CNAME, at most MAX_CHAIN links). Records of any other name are ignored.
 */
export function chainOf(asked: string, records: readonly Answer[]): string[] {
  const chain = [norm(asked)];
  while (chain.length <= MAX_CHAIN) {
    const tail = chain[chain.length - 1];
    const next = records.find(
      (r): r is Answer & { type: "CNAME"; data: string } => r.type === "CNAME" && norm(r.name) === tail,
    );
    if (!next || chain.includes(norm(next.data))) break;
    chain.push(norm(next.data));
  }
  return chain;
}

/** The answer-section records for the asked name: its CNAME chain and records of the asked type on it. */
export function recordsForQuestion(question: Question, records: readonly Answer[]): Answer[] {
  const chain = new Set(chainOf(question.name, records));
  return records.filter((r) => chain.has(norm(r.name)) && (r.type === "CNAME" || r.type === question.type));
}

/** A response of the resolver's own making, to the sandbox's query id and question. */
export function response(
  q: { id: number; question?: Question; edns?: boolean },
  rcode: Rcode,
  records: Answer[] = [],
): Buffer {
  return dnsPacket.encode({
    type: "response",
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
    questions: q.question ? [q.question] : [],
    answers: records,
    additionals: q.edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as Answer] : [],
  });
}
