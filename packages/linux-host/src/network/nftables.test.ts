import { describe, expect, it } from "vitest";
import { baseTableScript, sandboxScript } from "./nftables.js";

describe("nftables base table", () => {
  const base = {
    table: "inet berth_t",
    vethPrefix: "bt",
    sandboxCidr: "10.9.0.0/22",
    dnsPort: 5353,
    proxy: { http: 4001, tls: 4002 },
  };

  it("lets sandboxes reach the host ports it is given (the model gateway) besides DNS and the egress proxy", () => {
    const script = baseTableScript({ ...base, hostPorts: [4444] }, []);
    expect(script).toContain('iifname "bt*" tcp dport { 4001, 4002, 4444 } accept');
    // Everything else from sandboxes to the host is still dropped.
    expect(script).toMatch(/tcp dport \{ 4001, 4002, 4444 \} accept\n\s+iifname "bt\*" drop/);
  });

  it("opens only the egress proxy when no host port is given", () => {
    expect(baseTableScript(base, [])).toContain('iifname "bt*" tcp dport { 4001, 4002 } accept');
  });
});

describe("nftables sandbox chain", () => {
  const rules = (policy: import("@berth/core").NetworkPolicy, cidrs: string[] = []) =>
    sandboxScript("inet berth_t", { id: "sb1", key: '"bt1"', policy, cidrs }, false, { http: 1, tls: 2 });

  it("drops an open sandbox's deny list after its listed CIDRs (allow wins) and before accepting the rest", () => {
    const script = rules({ egress: "open", allow: ["8.8.8.8"], deny: ["8.8.0.0/16", "1.1.1.1"] }, [
      "8.8.8.8/32",
    ]);
    expect(script).toContain("add element inet berth_t deny_sb1 { 8.8.0.0/16, 1.1.1.1/32 }");
    const order = ["@cidr_sb1 accept", "@forbidden drop", "@deny_sb1 drop", "meta nfproto ipv4 accept"].map(
      (r) => script.indexOf(r),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
  });

  it("ignores a deny list outside open egress, and flushes the set when it goes", () => {
    const script = rules({ egress: "allowlist", allow: [], deny: ["8.8.8.8"] });
    expect(script).toContain("flush set inet berth_t deny_sb1");
    expect(script).not.toContain("@deny_sb1");
  });
});
