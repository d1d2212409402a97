import { describe, expect, it } from "vitest";
import { checkWebhookUrl, webhookAddressAllowed, webhookAllowCidrs } from "./webhook-address.js";

describe("webhook receivers", () => {
  it("allows public addresses and refuses loopback, private, link-local, CGNAT and reserved ones (IPv4, IPv6, mapped)", () => {
    for (const ip of ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"])
      expect(webhookAddressAllowed(ip, []), ip).toBe(true);
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "::",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "not-an-ip",
    ])
      expect(webhookAddressAllowed(ip, []), ip).toBe(false);
  });

  it("allows a private range the admin listed, and only that one", () => {
    const allow = webhookAllowCidrs(" 10.1.2.0/24 ,, ");
    expect(allow).toEqual(["10.1.2.0/24"]);
    expect(webhookAddressAllowed("10.1.2.9", allow)).toBe(true);
    expect(webhookAddressAllowed("10.1.3.9", allow)).toBe(false);
  });

  it("refuses at create what it can judge without DNS, naming the field", () => {
    expect(checkWebhookUrl("https://hooks.example.com/x", [], "webhooks[0].url").href).toBe(
      "https://hooks.example.com/x",
    );
    for (const url of [
      "http://localhost:8080/",
      "http://[::1]/",
      "http://169.254.169.254/",
      "ftp://a.example/",
      "https://u:p@a.example/",
      "x",
    ])
      expect(() => checkWebhookUrl(url, [], "webhooks[1].url"), url).toThrow(/webhooks\[1\]\.url/);
    expect(checkWebhookUrl("http://127.0.0.1:9/", ["127.0.0.0/8"], "f").port).toBe("9");
  });
});
