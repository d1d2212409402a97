// The sandbox page follows the sandbox's state: a paused or hibernated sandbox stays so when its
// page is opened (every terminal or file call would resume or wake it), its controls are the
// ones its state allows, and an unknown or deleted sandbox gets a clear page. Playwright drives
// Debian's Chromium against a real server with real runc sandboxes.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";

const SHOTS = join(import.meta.dirname, "..", "..", "docs", "screenshots");
let server: TestServer;
let browser: Browser;
let page: Page;
const created: string[] = [];

const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);

async function newSandbox(): Promise<string> {
  const r = await call("POST", "/v1/sandboxes", { resources: { memoryMiB: 256 } });
  expect(r.status).toBe(201);
  created.push(r.body.id);
  return r.body.id as string;
}

/** Opens the sandbox's page and waits until the page has made every call it makes by itself. */
async function open(id: string): Promise<void> {
  await page.goto(`${server.url}/#/sandboxes/${id}`);
  await page.waitForSelector("[data-test=state], [data-test=gone]");
  await page.waitForLoadState("networkidle");
}

const buttons = () =>
  page.locator("[data-action]").evaluateAll((els) => els.map((e) => e.getAttribute("data-action")));

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startTestServer();
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}/`);
  await page.fill("input[name=key]", server.adminKey);
  await page.click("[data-test=sign-in]");
  await page.waitForSelector("h1:has-text('Sandboxes')");
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const id of created) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
  await server?.stop();
});

describe("empty lists", () => {
  it("say there is nothing yet and what to do, on a server with no sandboxes and no sessions", async () => {
    await page.goto(`${server.url}/#/sandboxes`);
    expect(await (await page.waitForSelector("[data-test=empty]")).textContent()).toContain(
      "No sandboxes yet",
    );
    await page.goto(`${server.url}/#/sessions`);
    expect(await (await page.waitForSelector("[data-test=empty]")).textContent()).toContain(
      "No agent sessions yet",
    );
  });
});

describe("the sandbox page follows the sandbox's state", () => {
  it("opening a paused sandbox leaves it paused and offers Resume; resuming opens its terminal", async () => {
    const id = await newSandbox();
    expect((await call("POST", `/v1/sandboxes/${id}/pause`)).body.state).toBe("paused");
    await open(id);
    expect(await page.textContent("[data-test=state]")).toBe("paused");
    expect(await page.textContent("[data-test=not-running]")).toContain("Resume it to use its terminal");
    expect(await page.locator("[data-test=terminal]").count()).toBe(0);
    expect(await buttons()).toEqual(["resume", "delete"]);
    // Nothing the page did woke it.
    expect((await call("GET", `/v1/sandboxes/${id}`)).body.state).toBe("paused");
    await page.screenshot({ path: join(SHOTS, "sandbox-paused.png") });

    await page.click("[data-action=resume]");
    await page.waitForSelector("[data-test=terminal]");
    expect(await page.textContent("[data-test=state]")).toBe("running");
    expect(await buttons()).toEqual(["pause", "hibernate", "delete"]);
    expect((await call("GET", `/v1/sandboxes/${id}`)).body.state).toBe("running");
  }, 90_000);

  it("opening a hibernated sandbox leaves it hibernated and offers Wake", async () => {
    const id = await newSandbox();
    expect((await call("POST", `/v1/sandboxes/${id}/hibernate`)).body.state).toBe("hibernated");
    await open(id);
    expect(await page.textContent("[data-test=state]")).toBe("hibernated");
    expect(await buttons()).toEqual(["wake", "delete"]);
    expect((await call("GET", `/v1/sandboxes/${id}`)).body.state).toBe("hibernated");
  }, 90_000);

  it("says clearly when a sandbox does not exist or was deleted", async () => {
    await open("sbnosuchsandbox0000");
    expect(await page.textContent("h1")).toBe("No such sandbox");
    expect(await page.textContent("[data-test=gone]")).toContain("There is no sandbox sbnosuchsandbox0000");
    const id = await newSandbox();
    expect((await call("DELETE", `/v1/sandboxes/${id}`)).status).toBeLessThan(300);
    await open(id);
    expect(await page.textContent("[data-test=gone]")).toContain(`There is no sandbox ${id}`);
  }, 90_000);
});

describe("the session page follows the session's state (on Berth's demo model: no key)", () => {
  it("sends with Enter while the session is open, and offers no Send once it has ended", async () => {
    const sb = await newSandbox();
    const r = await call("POST", "/v1/sessions", {
      prompt: "first message",
      pattern: "long-running",
      sandbox: { id: sb },
      agent: { model: "berth-demo" },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const sessionId = r.body.id as string;
    await page.goto(`${server.url}/#/sessions/${sessionId}`);
    await page.waitForSelector("[data-test=result]", { timeout: 60_000 });
    await page.waitForSelector("[data-test=session-state]:has-text('idle')");
    expect(await page.isVisible("[data-test=composer]")).toBe(true);
    expect(await page.isVisible("[data-test=session-ended]")).toBe(false);
    // Enter in the message field sends it: the demo model answers a second time.
    await page.fill("input[name=message]", "second message");
    await page.press("input[name=message]", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("[data-test=result]").length >= 2, null, {
      timeout: 60_000,
    });
    expect(await page.inputValue("input[name=message]")).toBe("");

    expect((await call("DELETE", `/v1/sessions/${sessionId}`)).status).toBeLessThan(300);
    await page.waitForSelector("[data-test=session-ended]", { state: "visible", timeout: 30_000 });
    expect(await page.isVisible("[data-test=composer]")).toBe(false);
    expect(await page.locator("button:has-text('Send'):visible").count()).toBe(0);
  }, 150_000);
});

describe("loading states", () => {
  it("every page says it is loading while its data is on the way", async () => {
    const id = await newSandbox();
    // The API's answers are held until the page has been seen loading, then let through.
    let holding = false;
    const held: Array<() => Promise<void>> = [];
    const release = async () => {
      holding = false;
      // A request of a page already left may be gone: nothing to let through then.
      while (held.length > 0)
        await held
          .shift()?.()
          .catch(() => {});
    };
    const isApi = (url: URL) => url.pathname.startsWith("/v1/");
    await page.route(isApi, (route) => (holding ? held.push(() => route.continue()) : route.continue()));
    try {
      for (const hash of ["#/sandboxes", `#/sandboxes/${id}`, "#/sessions", "#/usage", "#/managed-agents"]) {
        holding = true;
        await page.goto(`${server.url}/${hash}`);
        await page.waitForSelector("[data-test=loading]", { state: "visible" });
        await release();
        await page.waitForSelector("[data-test=loading]", { state: "detached" });
      }
    } finally {
      await page.unroute(isApi);
      await release();
    }
  }, 90_000);
});

describe("at phone width (390 px)", () => {
  it("no page scrolls sideways", async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await phone.goto(`${server.url}/`);
      await phone.fill("input[name=key]", server.adminKey);
      await phone.click("[data-test=sign-in]");
      await phone.waitForSelector("h1:has-text('Sandboxes')");
      const id = await newSandbox();
      const demo = await call("POST", "/v1/sessions", {
        prompt: "hello at phone width",
        pattern: "long-running",
        sandbox: { id },
        agent: { model: "berth-demo" },
      });
      expect(demo.status, JSON.stringify(demo.body)).toBe(201);
      const wide: string[] = [];
      for (const [name, hash, ready] of [
        ["sandboxes", "#/sandboxes", "h1:has-text('Sandboxes')"],
        ["sandbox", `#/sandboxes/${id}`, "[data-test=terminal]"],
        ["sessions", "#/sessions", "h1"],
        ["session", `#/sessions/${demo.body.id}`, "[data-test=result]"],
        ["usage", "#/usage", "[data-test=usage-by-day] :is([data-test=chart], [data-test=empty])"],
        ["managed-agents", "#/managed-agents", "h1"],
      ] as const) {
        await phone.goto(`${server.url}/${hash}`);
        await phone.waitForSelector(ready);
        await phone.waitForLoadState("networkidle");
        const width = await phone.evaluate(() => document.documentElement.scrollWidth);
        if (width > 390) wide.push(`${name}: ${width} px`);
        await phone.screenshot({ path: join(SHOTS, `phone-${name}.png`), fullPage: true });
      }
      expect(wide, "pages wider than the phone").toEqual([]);
    } finally {
      await phone.close();
    }
  }, 180_000);
});
