import { describe, expect, it } from "vitest";
import { resolveNetwork } from "./create-spec.js";

describe("resolveNetwork: deny lists", () => {
  const all = ["none", "allowlist", "open"] as const;

  it("keeps an open sandbox's deny list as normalized CIDRs", () => {
    expect(resolveNetwork({ egress: "open", deny: ["8.8.8.8", " 1.2.0.0/16"] }, all, true)).toEqual({
      egress: "open",
      allow: [],
      deny: ["8.8.8.8/32", "1.2.0.0/16"],
    });
    // An empty list is no list.
    expect(resolveNetwork({ egress: "open", deny: [] }, all, true)).toEqual({ egress: "open", allow: [] });
  });

  it("refuses a deny list outside open egress, with hostnames, or where the runtime cannot enforce it", () => {
    expect(() => resolveNetwork({ egress: "allowlist", deny: ["8.8.8.8"] }, all, true)).toThrow(
      /network.deny needs egress 'open'/,
    );
    expect(() => resolveNetwork({ egress: "open", deny: ["example.com"] }, all, true)).toThrow(
      /hostnames cannot be denied/,
    );
    expect(() => resolveNetwork({ egress: "open", deny: ["300.1.1.1"] }, all, true)).toThrow(/not an IPv4/);
    expect(() => resolveNetwork({ egress: "open", deny: ["8.8.8.8"] }, all, false)).toThrow(/not supported/);
  });
});
