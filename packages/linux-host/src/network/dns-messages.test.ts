import dnsPacket, { type Answer } from "dns-packet";
import { describe, expect, it } from "vitest";
import { chainOf, checkQuery, recordsForQuestion, upstreamQuery } from "./dns-messages.js";

const query = (p: Partial<dnsPacket.Packet>) =>
  dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, ...p });

describe("the resolver's checks on DNS messages", () => {
  it("accepts one question of a data type, with or without EDNS, and forwards only that question", () => {
    const q = checkQuery(
      query({
        questions: [{ type: "A", name: "Allowed.test" }],
        additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as Answer],
      }),
    );
    expect(q).toMatchObject({ id: 7, question: { type: "A", name: "Allowed.test" }, edns: true });
    if (!("question" in q)) throw new Error("refused");
    const sent = dnsPacket.decode(upstreamQuery(99, q));
    expect(sent.id).toBe(99);
    expect(sent.questions).toEqual([{ type: "A", name: "Allowed.test", class: "IN" }]);
    expect(sent.answers).toEqual([]);
    expect(sent.authorities).toEqual([]);
    expect(sent.additionals?.map((a) => a.type)).toEqual(["OPT"]);
  });

  it("refuses several questions, extra records, zone transfers, other classes and odd names", () => {
    const a = { type: "A", name: "a.test" } as const;
    const cases: [Buffer, RegExp][] = [
      [query({ questions: [a, { type: "A", name: "b.test" }] }), /2 questions/],
      [query({ questions: [] }), /0 questions/],
      [query({ questions: [a], additionals: [{ type: "A", name: "b.test", data: "1.2.3.4" }] }), /not EDNS/],
      [query({ questions: [a], answers: [{ type: "A", name: "a.test", data: "1.2.3.4" }] }), /records/],
      [query({ questions: [a], authorities: [{ type: "NS", name: "a.test", data: "x.test" }] }), /records/],
      [query({ questions: [{ type: "AXFR", name: "a.test" }] }), /type AXFR/],
      [query({ questions: [{ type: "A", name: "a.test", class: "CH" }] }), /class/],
      [query({ questions: [{ type: "A", name: "a test" }] }), /hostname/],
      [Buffer.from("not dns at all"), /./],
    ];
    for (const [msg, why] of cases)
      expect(checkQuery(msg), String(why)).toMatchObject({ why: expect.stringMatching(why) });
    // A response (or a short datagram) gets no answer at all.
    expect(checkQuery(dnsPacket.encode({ type: "response", id: 1, questions: [a] }))).toMatchObject({
      id: null,
    });
    expect(checkQuery(Buffer.alloc(3))).toMatchObject({ id: null });
  });

  it("keeps only records of the asked name and its CNAME chain", () => {
    const records: Answer[] = [
      { type: "A", name: "other.test", data: "198.51.100.9" },
      { type: "CNAME", name: "www.allowed.test", data: "edge.cdn.test" },
      { type: "CNAME", name: "edge.cdn.test", data: "edge2.cdn.test" },
      { type: "A", name: "edge2.cdn.test", data: "198.51.100.1" },
      { type: "A", name: "WWW.allowed.test.", data: "198.51.100.2" },
      { type: "TXT", name: "www.allowed.test", data: "x" },
      { type: "CNAME", name: "unrelated.test", data: "www.allowed.test" },
    ];
    expect(chainOf("www.allowed.test", records)).toEqual([
      "www.allowed.test",
      "edge.cdn.test",
      "edge2.cdn.test",
    ]);
    const kept = recordsForQuestion({ type: "A", name: "www.allowed.test" }, records);
    expect(kept.map((r) => `${r.type} ${r.name}`)).toEqual([
      "CNAME www.allowed.test",
      "CNAME edge.cdn.test",
      "A edge2.cdn.test",
      "A WWW.allowed.test.",
    ]);
    // A CNAME loop ends.
    const loop: Answer[] = [
      { type: "CNAME", name: "a.test", data: "b.test" },
      { type: "CNAME", name: "b.test", data: "a.test" },
    ];
    expect(chainOf("a.test", loop)).toEqual(["a.test", "b.test"]);
  });
});
