// Exposed ports never share an origin with the API or the dashboard (Chromium, real servers,
// real runc sandboxes). A tenant's public preview page tries to read the dashboard's storage
// (where the API key lives), to call the API, and to read another tenant's token-protected port
// through the visitor's cookie. Path previews are on the preview listener (its own port); with a
// preview domain each port is a host of its own and `/p/...` is not served on the API's origin.
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const DOMAIN = "preview.test";
const VICTIM_SECRET = "secret-of-the-victim-tenant";
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    // Every preview host of the domain is this machine (what a wildcard DNS record does).
    args: ["--no-sandbox", `--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** What the attacker's page found, as it wrote it into its body. */
interface Loot {
  origin: string;
  session: string;
  local: string;
  cookie: string;
  victim: string;
  api: string;
  framed: string;
}

/** The attacker's page: reads what it can and fetches the victim's port and the API. */
const attackerPage = (victimUrl: string, apiUrl: string) => `<!doctype html>
<title>loading</title>
<script>
(async () => {
  const out = { origin: location.origin, session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage), cookie: document.cookie };
  try { const r = await fetch(${JSON.stringify(`${victimUrl}secret.txt`)}, { credentials: "include" }); out.victim = r.status + ":" + (await r.text()); }
  catch (e) { out.victim = "blocked: " + e.message; }
  try { const r = await fetch(${JSON.stringify(`${apiUrl}/v1/sandboxes`)}, { credentials: "include" }); out.api = r.status + ":" + (await r.text()).slice(0, 200); }
  catch (e) { out.api = "blocked: " + e.message; }
  // The dashboard in a frame: refused (frame-ancestors), and unreadable from here anyway.
  out.framed = await new Promise((resolve) => {
    const f = document.createElement("iframe");
    f.src = ${JSON.stringify(`${apiUrl}/`)};
    f.onload = () => { try { resolve("read: " + JSON.stringify(f.contentWindow.sessionStorage)); } catch (e) { resolve("blocked: " + e.name); } };
    setTimeout(() => resolve("no load"), 3000);
    document.body.appendChild(f);
  });
  document.body.setAttribute("data-loot", JSON.stringify(out));
  document.title = "done";
})();
</script>
<body></body>`;

/** A tenant's sandbox serving `files` on port 8000 (python's http.server), exposed. */
async function serving(
  server: TestServer,
  key: string,
  files: Record<string, string>,
  isPublic: boolean,
): Promise<{ id: string; url: string; token: string | null }> {
  const s = await api(server, key, "POST", "/v1/sandboxes", {});
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  const id = s.body.id as string;
  for (const [name, text] of Object.entries(files)) {
    const put = await fetch(`${server.url}/v1/sandboxes/${id}/files/content?path=/workspace/${name}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}` },
      body: text,
    });
    expect(put.status).toBe(200);
  }
  await api(server, key, "POST", `/v1/sandboxes/${id}/processes`, {
    cmd: ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", "/workspace"],
  });
  const p = await api(server, key, "POST", `/v1/sandboxes/${id}/ports`, { port: 8000, public: isPublic });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  return { id, url: p.body.url, token: p.body.token };
}

/** Loads `url` in `page` until the server in the sandbox answers (it starts in the background). */
async function visit(page: Page, url: string): Promise<number> {
  return waitFor(
    `${url} to answer other than 502`,
    async () => (await page.goto(url))?.status() ?? 0,
    (status) => status !== 502,
    { timeoutMs: 10_000, everyMs: 100 },
  );
}

/** Signs in to the dashboard in `page` with `key` (it keeps the key in sessionStorage). */
async function signIn(page: Page, server: TestServer, key: string): Promise<void> {
  await page.goto(`${server.url}/`);
  await page.fill("input[name=key]", key);
  await page.click("[data-test=sign-in]");
  await page.waitForSelector("h1:has-text('Sandboxes')");
  expect(await page.evaluate(() => JSON.stringify(sessionStorage))).toContain(key);
}

/** Runs the attack in the dashboard's own tab and returns what the page got. */
async function attack(page: Page, url: string): Promise<Loot> {
  expect(await visit(page, url)).toBe(200);
  await page.waitForFunction(() => document.title === "done", undefined, { timeout: 15_000 });
  return JSON.parse((await page.getAttribute("body", "data-loot")) as string) as Loot;
}

/** Two tenants: a victim with a token-protected port, an attacker with a public page. */
async function tenants(server: TestServer) {
  const victimKey = (await api(server, server.adminKey, "POST", "/v1/keys", { tenant: "victim" })).body.key;
  const attackerKey = (await api(server, server.adminKey, "POST", "/v1/keys", { tenant: "attacker" })).body
    .key;
  const victim = await serving(server, victimKey, { "secret.txt": VICTIM_SECRET }, false);
  return { victimKey, attackerKey, victim };
}

describe("previews without a preview domain (the preview listener)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("a public preview page opened in the dashboard's tab cannot read its storage, frame it or call the API", async () => {
    const { victimKey, attackerKey, victim } = await tenants(server);
    const attacker = await serving(server, attackerKey, {}, true);
    const page = await browser.newPage();
    try {
      const put = await fetch(
        `${server.url}/v1/sandboxes/${attacker.id}/files/content?path=/workspace/index.html`,
        {
          method: "PUT",
          headers: { authorization: `Bearer ${attackerKey}` },
          body: attackerPage(victim.url, server.url),
        },
      );
      expect(put.status).toBe(200);
      await signIn(page, server, victimKey);
      const loot = await attack(page, attacker.url);
      expect(JSON.stringify(loot)).not.toContain(victimKey);
      expect(loot.session).toBe("{}");
      expect(loot.local).toBe("{}");
      // The page's URL is on the preview listener: another port, so another origin.
      expect(loot.origin).toBe(server.previewUrl);
      expect(new URL(attacker.url).origin).not.toBe(new URL(server.url).origin);
      expect(loot.api).not.toMatch(/^200/);
      expect(loot.framed).not.toMatch(/^read/);
      // Back on the dashboard's origin the key is still there (the tab's storage is per origin).
      await page.goto(`${server.url}/`);
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).toContain(victimKey);
      // And the dashboard's policy trusts only its own origin.
      const csp = (await fetch(`${server.url}/`)).headers.get("content-security-policy") ?? "";
      expect(csp).toContain("connect-src 'self';");
      expect(csp).not.toMatch(/ws:|wss:|\*/);
    } finally {
      await page.close();
    }
  }, 120_000);
});

describe("previews on a preview domain (a host per port)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { BERTH_PREVIEW_DOMAIN: DOMAIN } });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("a port's page cannot read another port's cookie or what it protects, nor the dashboard's storage; /p/ is not served on the API's origin", async () => {
    const { victimKey, attackerKey, victim } = await tenants(server);
    const attacker = await serving(server, attackerKey, {}, true);
    const page = await browser.newPage();
    try {
      expect(new URL(attacker.url).hostname).toBe(`8000-${attacker.id}.${DOMAIN}`);
      const put = await fetch(
        `${server.url}/v1/sandboxes/${attacker.id}/files/content?path=/workspace/index.html`,
        {
          method: "PUT",
          headers: { authorization: `Bearer ${attackerKey}` },
          body: attackerPage(victim.url, server.url),
        },
      );
      expect(put.status).toBe(200);
      await signIn(page, server, victimKey);
      // The victim opens their own port with its token: the browser now holds its cookie.
      const own = await browser.newPage();
      expect(await visit(own, `${victim.url}secret.txt?token=${victim.token}`)).toBe(200);
      expect(await own.textContent("body")).toBe(VICTIM_SECRET);
      expect(await visit(own, `${victim.url}secret.txt`)).toBe(200);
      await own.close();
      // The attacker's page, by its preview host.
      const loot = await attack(page, attacker.url);
      expect(loot.origin).toBe(new URL(attacker.url).origin);
      expect(loot.cookie).toBe("");
      expect(loot.victim).toMatch(/^blocked/);
      expect(loot.session).toBe("{}");
      expect(JSON.stringify(loot)).not.toContain(victimKey);
      expect(JSON.stringify(loot)).not.toContain(VICTIM_SECRET);
      // The same public port by path on the API's (the dashboard's) origin is not served at all.
      await page.goto(`${server.url}/`);
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).toContain(victimKey);
      const byPath = await page.goto(`${server.url}/p/${attacker.id}/8000/`);
      expect(byPath?.status()).toBe(404);
      expect(await page.title()).not.toBe("done");
      expect(await page.evaluate(() => document.body.textContent ?? "")).toContain("not_found");
    } finally {
      await page.close();
    }
  }, 120_000);
});
