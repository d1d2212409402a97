import { describe, expect, it } from "vitest";
import { baseTableScript } from "./nftables.js";

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
