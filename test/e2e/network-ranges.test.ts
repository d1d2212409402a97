// Two Berth servers on one host: the sandbox range is checked against the host's addresses and
// routes and the other servers' claims at start. A configured range that is taken refuses the
// start (naming the range and the setting) and leaves the first server's sandboxes working; with
// no range configured each server picks a free /16, remembers it, and both work side by side.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeDns, type OutsideServer, startFakeDns, startOutsideServer } from "../support/outside.js";
import { freePort } from "../support/ports.js";
import { api, startTestServer, type TestServer } from "../support/server.js";

let outside: OutsideServer;
let dns: FakeDns;
const servers: TestServer[] = [];

const randomCidr = () =>
  `10.${128 + Math.floor(Math.random() * 127)}.${Math.floor(Math.random() * 64) * 4}.0/22`;
const start = async (env: Record<string, string>) => {
  const s = await startTestServer({
    env: { BERTH_DNS_UPSTREAM: dns.address, BERTH_GATEWAY_PORT: String(await freePort("0.0.0.0")), ...env },
  });
  servers.push(s);
  return s;
};
const sh = async (s: TestServer, id: string, script: string) =>
  (await api(s, s.adminKey, "POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", script] })).body as {
    stdout: string;
  };

/** A sandbox with open egress on `s`. */
async function sandboxOn(s: TestServer): Promise<string> {
  const r = await api(s, s.adminKey, "POST", "/v1/sandboxes", { network: { egress: "open" } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

/** DNS through Berth's resolver, egress by name, and the model gateway at the sandbox's host end. */
async function networkWorks(s: TestServer, id: string, gatewayPort: string): Promise<void> {
  const r = await sh(
    s,
    id,
    `getent hosts allowed.test | cut -d' ' -f1; curl -s -m 3 http://allowed.test:8080; echo; gw=$(ip route | awk '/default/ {print $3}'); curl -s -m 3 -o /dev/null -w '%{http_code}' http://$gw:${gatewayPort}/`,
  );
  const [resolved, body, gateway] = r.stdout.split("\n");
  expect(resolved, r.stdout).toBe(outside.ip);
  expect(body, r.stdout).toBe("outside:a:allowed.test:8080");
  expect(gateway, r.stdout).toMatch(/^[1-5]\d\d$/);
}
beforeAll(async () => {
  outside = await startOutsideServer("a");
  dns = await startFakeDns({ "allowed.test": outside.ip });
});

afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => {});
  outside?.stop();
  dns?.stop();
});

describe("sandbox ranges of two servers on one host", () => {
  it("a second server on a taken range refuses with a clear message; the first one's sandboxes keep working", async () => {
    const cidr = randomCidr();
    const gw = String(await freePort("0.0.0.0"));
    const first = await start({ BERTH_NETWORK_CIDR: cidr, BERTH_GATEWAY_PORT: gw });
    // No sandbox yet, no pool namespace: nothing of it shows on the host but its claim.
    const idleCidr = randomCidr();
    await start({ BERTH_NETWORK_CIDR: idleCidr, BERTH_DISK_POOL_SIZE: "0" });
    await expect(startTestServer({ env: { BERTH_NETWORK_CIDR: idleCidr } })).rejects.toThrow(
      new RegExp(
        `${idleCidr.replace(/\./g, "\\.")} \\(BERTH_NETWORK_CIDR\\) overlaps .*another Berth server`,
      ),
    );
    const id = await sandboxOn(first);
    await networkWorks(first, id, gw);
    // The same range, written another way (a /16 around it).
    const wider = `${cidr.split(".").slice(0, 2).join(".")}.0.0/16`;
    await expect(startTestServer({ env: { BERTH_NETWORK_CIDR: wider } })).rejects.toThrow(
      /overlaps .*BERTH_NETWORK_CIDR to a free private range, or unset it/,
    );
    await networkWorks(first, id, gw);
  });

  it("with no range set, two servers pick different free /16s, remember them across a restart, and both pass a network test", async () => {
    const gws = [String(await freePort("0.0.0.0")), String(await freePort("0.0.0.0"))];
    const one = await start({ BERTH_NETWORK_CIDR: "", BERTH_GATEWAY_PORT: gws[0] as string });
    const two = await start({ BERTH_NETWORK_CIDR: "", BERTH_GATEWAY_PORT: gws[1] as string });
    const picked = [one, two].map((s) => readFileSync(`${s.dataDir}/runtime/net/cidr`, "utf8").trim());
    expect(picked[0]).toMatch(/^\d+\.\d+\.0\.0\/16$/);
    expect(picked[1]).toMatch(/^\d+\.\d+\.0\.0\/16$/);
    expect(picked[0]).not.toBe(picked[1]);
    const ids = [await sandboxOn(one), await sandboxOn(two)];
    await networkWorks(one, ids[0] as string, gws[0] as string);
    await networkWorks(two, ids[1] as string, gws[1] as string);
    await one.restart();
    expect(readFileSync(`${one.dataDir}/runtime/net/cidr`, "utf8").trim()).toBe(picked[0]);
    await networkWorks(one, ids[0] as string, gws[0] as string);
    await networkWorks(two, ids[1] as string, gws[1] as string);
  });
});
