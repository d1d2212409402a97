import { describe, expect, it } from "vitest";
import { berthNetwork } from "./network.js";

describe("E2B network lists as Berth egress policies", () => {
  it("maps denying all traffic to an allowlist of allowOut, or to none", () => {
    expect(berthNetwork({ denyOut: ["0.0.0.0/0"], allowOut: ["1.1.1.1", "api.example.com"] }, true)).toEqual({
      egress: "allowlist",
      allow: ["1.1.1.1", "api.example.com"],
    });
    expect(berthNetwork({ denyOut: ["0.0.0.0/0"] }, true)).toEqual({ egress: "none" });
    expect(berthNetwork({ allowOut: ["1.1.1.1"] }, false)).toEqual({
      egress: "allowlist",
      allow: ["1.1.1.1"],
    });
    expect(berthNetwork(undefined, false)).toEqual({ egress: "none" });
  });

  it("maps a narrower deny list to open egress with deny (allowOut kept to win over it)", () => {
    expect(berthNetwork({ denyOut: ["8.8.8.8"] }, true)).toEqual({
      egress: "open",
      allow: [],
      deny: ["8.8.8.8"],
    });
    expect(berthNetwork({ denyOut: ["8.8.0.0/16"], allowOut: ["8.8.8.8"] }, undefined)).toEqual({
      egress: "open",
      allow: ["8.8.8.8"],
      deny: ["8.8.0.0/16"],
    });
  });

  it("leaves a sandbox with no lists to the server's default, and refuses transforms and proxies", () => {
    expect(berthNetwork(undefined, true)).toBeUndefined();
    expect(
      berthNetwork({ allowPublicTraffic: false, maskRequestHost: "x.example:8080", rules: {} }, true),
    ).toBeUndefined();
    expect(() => berthNetwork({ rules: { "a.example": [{}] } }, true)).toThrow(/not supported/);
    expect(() => berthNetwork({ egressProxy: { address: "p:1080" } }, true)).toThrow(/not supported/);
  });
});
