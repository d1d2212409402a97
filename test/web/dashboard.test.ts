// The dashboard in a real browser: Playwright driving Debian's Chromium against a real server
// (real runc sandboxes, the real Agent SDK against the FAKE model server of the fixtures).
// Screenshots of each page go to docs/screenshots/ (shown in docs/dashboard.md).
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SandboxRecord } from "@berth/core";
import { openStore } from "@berth/store";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type FakeModel, startFakeModel } from "../fixtures/fake-model/server.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

/** A 2x2 PNG, for the image preview. */
const PNG_2X2 =
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGNQTX4NRAwQCgAligXNFnxqAgAAAABJRU5ErkJggg==";
const SHOTS = join(import.meta.dirname, "..", "..", "docs", "screenshots");
let server: TestServer;
let model: FakeModel;
let browser: Browser;
let page: Page;
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  model = await startFakeModel(() => ({
    kind: "text",
    text: "Hello from the agent, through the dashboard.",
  }));
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: "sk-ant-dashboard-test", BERTH_ANTHROPIC_BASE_URL: model.url },
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // The page's own errors show up in the test output.
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console.error(`console: ${m.text()}`));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await model?.close();
});

describe("dashboard in Chromium", () => {
  it("signs in with an API key (and refuses a wrong one)", async () => {
    await page.goto(`${server.url}/`);
    await page.fill("input[name=key]", "berth_wrong");
    await page.click("[data-test=sign-in]");
    await page.waitForSelector("text=That key does not work");
    await page.fill("input[name=key]", server.adminKey);
    await page.click("[data-test=sign-in]");
    await page.waitForSelector("h1:has-text('Sandboxes')");
    await shot("sign-in-then-sandboxes");
  });

  it("creates a sandbox, runs a command in its terminal, uploads a file, pauses and resumes it", async () => {
    await page.click("[data-test=create-sandbox]");
    await page.waitForSelector("[data-test=state]:has-text('running')");
    await page.click("[data-test=terminal]");
    await page.keyboard.type("echo hello-$((6*7))\n");
    await page.waitForSelector(".xterm-rows:has-text('hello-42')", { timeout: 20_000 });
    await page.setInputFiles("[data-test=upload]", {
      name: "notes-from-browser.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("uploaded through the dashboard"),
    });
    await page.waitForSelector("[data-test=files] >> text=notes-from-browser.txt");
    await page.keyboard.type("cat notes-from-browser.txt\n");
    await page.waitForSelector(".xterm-rows:has-text('uploaded through the dashboard')");
    // Picking it previews it as text; Download gives it back.
    await page.click("[data-test=files] >> text=notes-from-browser.txt");
    await page.waitForSelector("[data-test=preview-text]:has-text('uploaded through the dashboard')");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-test=download]")]);
    expect(readFileSync((await download.path()) as string, "utf8")).toBe("uploaded through the dashboard");
    // An image previews as an image the browser decoded.
    await page.setInputFiles("[data-test=upload]", {
      name: "dot.png",
      mimeType: "image/png",
      buffer: Buffer.from(PNG_2X2, "base64"),
    });
    await page.click("[data-test=files] >> text=dot.png");
    const img = await page.waitForSelector("[data-test=preview-image]");
    await page.waitForFunction((el) => (el as HTMLImageElement).complete, img);
    expect(await img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBe(2);
    // A background process's logs stream into the page.
    const id = page.url().split("/").pop() as string;
    const p = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: ["sh", "-c", "for i in 1 2 3; do echo tick-$i; sleep 0.3; done; sleep 30"],
    });
    await page.reload();
    await page.click(`tr:has(td:text-is("${p.body.pid}")) >> button:has-text("logs")`);
    await page.waitForSelector("pre.log:has-text('tick-3')");
    // An app in the sandbox, exposed from the page and opened from its link.
    await page.click("[data-test=terminal]");
    await page.keyboard.type("python3 -m http.server 8000 --bind 0.0.0.0 >/dev/null 2>&1 &\n");
    await page.fill("[data-test=port]", "8000");
    await page.click("button:has-text('Expose')");
    const link = page.locator("a[data-port='8000']");
    await link.waitFor();
    // The server starts in the background: the link is followed until its listing shows.
    const listing = await waitFor(
      "the exposed port's listing in a new tab",
      async () => {
        const [tab] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
        await tab.waitForLoadState();
        const text = (await tab.textContent("body")) ?? "";
        await tab.close();
        return text;
      },
      (text) => text.includes("notes-from-browser.txt"),
      { everyMs: 200 },
    );
    expect(listing).toContain("notes-from-browser.txt");
    await shot("sandbox");
    await page.click("[data-action=pause]");
    await page.waitForSelector("[data-test=state]:has-text('paused')");
    await page.click("[data-action=resume]");
    await page.waitForSelector("[data-test=state]:has-text('running')");
  }, 90_000);

  it("gives a working link for a private port exposed through the API (whose token the page never saw)", async () => {
    const made = await api(server, server.adminKey, "POST", "/v1/sandboxes", {});
    const id = made.body.id as string;
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/files/mkdir`, {
      path: "/home/user/site",
    });
    await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/processes`, {
      cmd: [
        "sh",
        "-c",
        "cd /home/user/site && echo from-the-api-port > index.html && python3 -m http.server 8001",
      ],
    });
    const exposed = await api(server, server.adminKey, "POST", `/v1/sandboxes/${id}/ports`, { port: 8001 });
    expect(exposed.body.token).toBeTruthy();
    await page.goto(`${server.url}/#/sandboxes/${id}`);
    // Without the token a link would be refused: the page offers a new one instead.
    await page.waitForSelector("[data-test=port-new-link][data-port='8001']");
    expect(await page.locator("a[data-port='8001']").count()).toBe(0);
    page.once("dialog", (d) => void d.accept());
    await page.click("[data-test=port-new-link][data-port='8001']");
    const link = page.locator("a[data-port='8001']");
    await link.waitFor();
    const body = await waitFor(
      "the API-exposed port's page in a new tab",
      async () => {
        const [tab] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
        await tab.waitForLoadState();
        const text = (await tab.textContent("body")) ?? "";
        await tab.close();
        return text;
      },
      (text) => text.includes("from-the-api-port"),
      { everyMs: 200 },
    );
    expect(body).toContain("from-the-api-port");
    // After a reload the page still has the token it got.
    await page.reload();
    await page.locator("a[data-port='8001']").waitFor();
    await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${id}`);
  }, 90_000);

  it("starts an agent session and shows its messages as they arrive, then the cost on the usage page", async () => {
    await page.goto(`${server.url}/#/sessions`);
    await page.fill("textarea[name=prompt]", "Say hello to the dashboard");
    await page.click("[data-test=start-session]");
    await page.waitForSelector("[data-test=transcript] >> text=Hello from the agent", { timeout: 60_000 });
    await page.waitForSelector("[data-test=result]", { timeout: 60_000 });
    await shot("session");
    await page.goto(`${server.url}/#/usage`);
    // Chart.js draws each chart on a canvas: one bar per day, per tenant, per session.
    for (const chart of ["usage-by-day", "usage-by-tenant", "usage-by-session"]) {
      const box = await page.waitForSelector(`[data-test=${chart}] [data-test=chart] canvas`);
      expect(await box.evaluate((c) => (c as HTMLCanvasElement).width)).toBeGreaterThan(0);
      expect(
        Number(await page.getAttribute(`[data-test=${chart}] [data-test=chart]`, "data-bars")),
      ).toBeGreaterThan(0);
    }
    const total = await page.textContent("[data-test=total]");
    expect(Number(total?.replace("$", ""))).toBeGreaterThan(0);
    await shot("usage");
  }, 120_000);

  it("shows why a session failed: its failure code, the model API's status and message", async () => {
    model.setScript((req) =>
      JSON.stringify(req.body).includes("fail-for-the-dashboard")
        ? { kind: "error", status: 400, type: "invalid_request_error", message: "fake refusal" }
        : { kind: "text", text: "Hello from the agent, through the dashboard." },
    );
    const made = await api(server, server.adminKey, "POST", "/v1/sessions", {
      prompt: "fail-for-the-dashboard",
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await page.goto(`${server.url}/#/sessions/${made.body.id}`);
    const failure = await page.waitForSelector("[data-test=session-failure]", { timeout: 60_000 });
    expect(await failure.textContent()).toContain("model_error (400)");
    expect(await failure.textContent()).toContain("fake refusal");
    await shot("session-failed");
  }, 120_000);

  it("shows the user's prompt and a permission request, and Allow from the page lets the tool run", async () => {
    const marker = `allow-from-page-${Date.now()}`;
    model.setScript((req) => {
      if (!JSON.stringify(req.body).includes(marker)) return { kind: "text", text: "ok" };
      const answered = (req.body.messages as any[]).some(
        (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
      );
      return answered
        ? { kind: "text", text: "The tool ran." }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: `echo allowed > /home/user/${marker}`, description: "write a file" },
          };
    });
    const made = await api(server, server.adminKey, "POST", "/v1/sessions", {
      prompt: `Please write the file ${marker}`,
      pattern: "long-running",
      agent: { permissionMode: "default" },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await page.goto(`${server.url}/#/sessions/${made.body.id}`);
    await page.waitForSelector(`[data-test=user-message]:has-text('${marker}')`);
    const ask = await page.waitForSelector("[data-test=permission-request]", { timeout: 60_000 });
    expect(await ask.textContent()).toContain(`echo allowed > /home/user/${marker}`);
    await shot("session-permission");
    await page.click("[data-test=permission-allow]");
    await page.waitForSelector("[data-test=permission-request][data-resolved=allow]", { timeout: 30_000 });
    await page.waitForSelector("[data-test=transcript] >> text=The tool ran.", { timeout: 60_000 });
    const ran = await api(server, server.adminKey, "POST", `/v1/sandboxes/${made.body.sandboxId}/exec`, {
      cmd: ["cat", `/home/user/${marker}`],
    });
    expect(ran.body.stdout).toBe("allowed\n");
  }, 120_000);

  it("stays usable with 500 sandboxes: paged and searchable", async () => {
    // 500 records of failed sandboxes written to the server's own SQLite store (making 500
    // real ones is what the density bench does; here the page is what is tested).
    const store = await openStore({ dataDir: server.dataDir });
    const now = new Date().toISOString();
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      const id = `sb${String(i).padStart(3, "0")}${Math.random().toString(36).slice(2, 15).padEnd(13, "x")}`;
      ids.push(id);
      const r: SandboxRecord = {
        id,
        tenantId: "default",
        state: "failed",
        template: "default",
        resources: { cpus: 1, memoryMiB: 1024, diskMiB: 5120, pids: 512 },
        network: { egress: "none", allow: [] },
        env: {},
        labels: { batch: "many" },
        idle: null,
        timeoutSeconds: null,
        createdAt: now,
        expiresAt: null,
        lastActivityAt: now,
        failureReason: "made by the dashboard test",
        runtimeInfo: {},
        volumes: [],
      };
      await store.insertSandbox(r);
    }
    await store.close();
    await page.goto(`${server.url}/#/sandboxes`);
    await page.selectOption("select[name=state]", "failed");
    await page.click("button:has-text('Search')");
    await page.waitForSelector("text=page 1, 50 shown, more");
    await page.click("button:has-text('next ›')");
    await page.waitForSelector("text=page 2, 50 shown, more");
    await page.fill("input[name=search]", ids[321] as string);
    await page.click("button:has-text('Search')");
    await page.waitForSelector(`tr[data-id="${ids[321]}"]`);
    await shot("sandboxes-500");
  }, 60_000);
});

describe("the dashboard's WebSocket key", () => {
  it("is taken from the berth.bearer subprotocol on an upgrade only, and never echoed", async () => {
    const s = (await api(server, server.adminKey, "POST", "/v1/sandboxes", {})).body.id as string;
    const url = `${server.url.replace("http", "ws")}/v1/sandboxes/${s}/pty`;
    const ws = new WebSocket(url, ["berth", `berth.bearer.${server.adminKey}`]);
    await new Promise((res, rej) => ws.once("open", res).once("error", rej));
    expect(ws.protocol).toBe("berth");
    ws.close();
    const refused = new WebSocket(url, ["berth", "berth.bearer.berth_nope"]);
    const status = await new Promise((res) =>
      refused.once("unexpected-response", (_q, r) => res(r.statusCode)),
    );
    expect(status).toBe(401);
    // On a plain request the subprotocol header carries no key.
    const plain = await fetch(`${server.url}/v1/sandboxes`, {
      headers: { "sec-websocket-protocol": `berth, berth.bearer.${server.adminKey}` },
    });
    expect(plain.status).toBe(401);
    await api(server, server.adminKey, "DELETE", `/v1/sandboxes/${s}`);
  });
});
