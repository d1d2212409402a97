// E2B's per-sandbox network lists (`network: {allowOut, denyOut}`, `updateNetwork`) through the
// real `e2b` package against a real Berth server: enforced by nftables on real veths. The
// "outside" servers live in network namespaces this test makes; no traffic leaves the machine.
import { type ConnectionOpts, Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OutsideServer, startOutsideServer } from "../support/outside.js";
import { api, startTestServer, type TestServer } from "../support/server.js";

let server: TestServer;
let a: OutsideServer;
let b: OutsideServer;
let opts: ConnectionOpts;
const made: Sandbox[] = [];

async function create(network: Parameters<typeof Sandbox.create>[1]["network"]): Promise<Sandbox> {
  const sb = await Sandbox.create("base", { ...opts, timeoutMs: 600_000, network });
  made.push(sb);
  return sb;
}

/** Whether the sandbox reaches an outside server (its answer names it), from inside. */
async function reaches(sb: Sandbox, o: OutsideServer): Promise<boolean> {
  const r = await sb.commands.run(`curl -s --connect-timeout 1 -m 2 http://${o.ip}:8080/ || echo FAIL`);
  return r.stdout.startsWith(`outside:${o === a ? "a" : "b"}:`);
}

/** How many live sandboxes the tenant has (nothing may be left half-made by a refused create). */
const liveCount = async () => (await Sandbox.list(opts).nextItems()).length;

beforeAll(async () => {
  [a, b] = await Promise.all([startOutsideServer("a"), startOutsideServer("b")]);
  server = await startTestServer();
  // An E2B key of the admin's tenant: a tenant key, bound by the server's egress limits.
  const key = await api(server, server.adminKey, "POST", "/v1/e2b/keys");
  expect(key.status).toBe(201);
  opts = {
    apiKey: key.body.key as string,
    apiUrl: `${server.url}/e2b`,
    sandboxUrl: `${server.url}/e2b/envd`,
  };
});

afterAll(async () => {
  await Promise.allSettled(made.map((s) => s.kill()));
  await server?.stop();
  a?.stop();
  b?.stop();
});

describe("E2B network lists", () => {
  it("denies all but allowOut, denies only denyOut, lets allowOut win, and updateNetwork replaces the lists", async () => {
    const [only, denied, precedence] = await Promise.all([
      create({ denyOut: ({ allTraffic }) => [allTraffic], allowOut: [a.ip] }),
      create({ denyOut: [b.ip] }),
      // Both outside servers are in 198.18.0.0/16: the wide deny, with one address allowed.
      create({ denyOut: ["198.18.0.0/16"], allowOut: [a.ip] }),
    ]);
    expect([await reaches(only, a), await reaches(only, b)]).toEqual([true, false]);
    expect([await reaches(denied, a), await reaches(denied, b)]).toEqual([true, false]);
    expect([await reaches(precedence, a), await reaches(precedence, b)]).toEqual([true, false]);
    expect((await denied.getInfo()).network).toMatchObject({ denyOut: [`${b.ip}/32`] });

    // The update replaces both lists at once, while the sandbox runs.
    await denied.updateNetwork({ denyOut: [a.ip] });
    expect([await reaches(denied, a), await reaches(denied, b)]).toEqual([false, true]);
    await denied.updateNetwork({ denyOut: ({ allTraffic }) => [allTraffic], allowOut: [b.ip] });
    expect([await reaches(denied, a), await reaches(denied, b)]).toEqual([false, true]);
    // No lists at all is the server's default egress (`none`): nothing outside answers.
    await denied.updateNetwork({});
    expect([await reaches(denied, a), await reaches(denied, b)]).toEqual([false, false]);
  });

  it("refuses what the server forbids a tenant (metadata, private and too-wide ranges) and hostnames to deny", async () => {
    const before = await liveCount();
    const all = ({ allTraffic }: { allTraffic: string }) => [allTraffic];
    for (const [network, text] of [
      [{ denyOut: all, allowOut: ["169.254.169.254"] }, "only an admin key may allow it"],
      [{ denyOut: all, allowOut: ["10.0.0.0/8"] }, "only an admin key may allow it"],
      [{ denyOut: [b.ip], allowOut: ["0.0.0.0/1"] }, "is wider than /8"],
      [{ denyOut: ["example.com"] }, "hostnames cannot be denied"],
      [{ rules: { "example.com": [{ transform: { headers: { x: "y" } } }] } }, "not supported"],
    ] as const)
      await expect(create(network as never), JSON.stringify(network)).rejects.toThrow(text);
    expect(await liveCount()).toBe(before);

    const sb = await create({ denyOut: [b.ip] });
    await expect(sb.updateNetwork({ denyOut: all, allowOut: ["169.254.169.254"] })).rejects.toThrow(
      "only an admin key may allow it",
    );
    // A refused update changes nothing.
    expect([await reaches(sb, a), await reaches(sb, b)]).toEqual([true, false]);
  });
});
