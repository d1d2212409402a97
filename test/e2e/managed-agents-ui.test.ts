/**
 * Managed Agents through the `berth` CLI (from its build) and the dashboard (Playwright driving
 * Debian's Chromium), against a real server with real sandboxes and the FAKE control plane
 * (test/fixtures/fake-managed-agents).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type FakeControlPlane, startFakeControlPlane } from "../fixtures/fake-managed-agents/server.js";
import { runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const SHOTS = join(import.meta.dirname, "..", "web", "screenshots");
let server: TestServer;
let plane: FakeControlPlane;
let browser: Browser | undefined;

beforeAll(async () => {
  plane = await startFakeControlPlane();
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await plane?.close();
});

const berth = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) =>
  runBerth(server, args, o);

it("adds, lists, shows and removes an integration with the CLI, and the dashboard shows its items", async () => {
  // The key comes from the environment, never from the command line.
  const noKey = await berth(["managed-agents", "add", "--environment", plane.environmentId]);
  expect(noKey.code).not.toBe(0);
  expect(noKey.stderr).toContain("ANTHROPIC_ENVIRONMENT_KEY");
  const added = await berth(
    [
      "managed-agents",
      "add",
      "--environment",
      plane.environmentId,
      "--base-url",
      plane.url,
      "--max-concurrent",
      "2",
    ],
    { env: { ANTHROPIC_ENVIRONMENT_KEY: plane.environmentKey } },
  );
  expect(added.code, added.stderr).toBe(0);
  const id = added.stdout.trim();
  expect(id).toMatch(/^ma[a-z0-9]{16}$/);

  const { workId, sessionId } = plane.enqueueSession();
  await waitFor(
    "the item to run",
    async () =>
      (await api(server, server.adminKey, "GET", `/v1/integrations/managed-agents/${id}`)).body.items,
    (items: any[]) => items?.some((i) => i.workId === workId && i.state === "running"),
    { timeoutMs: 60_000 },
  );

  const listed = await berth(["managed-agents", "ls"]);
  expect(listed.stdout).toContain(id);
  expect(listed.stdout).toContain(plane.environmentId);
  const shown = await berth(["managed-agents", "show", id]);
  expect(shown.stdout).toContain(workId);
  expect(shown.stdout).toContain("running");
  expect(`${listed.stdout}${shown.stdout}`).not.toContain(plane.environmentKey);

  // The dashboard's page shows the integration and the item, with a link to its sandbox.
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${server.url}/`);
  await page.fill("input[name=key]", server.adminKey);
  await page.click("[data-test=sign-in]");
  await page.waitForSelector("h1:has-text('Sandboxes')");
  await page.click("a:has-text('Managed Agents')");
  await page.waitForSelector(`[data-integration='${id}'] [data-work='${workId}'] a[href^='#/sandboxes/sb']`);
  await page.screenshot({ path: join(SHOTS, "managed-agents.png"), fullPage: true });

  const removed = await berth(["managed-agents", "rm", id, "--force"]);
  expect(removed.code, removed.stderr).toBe(0);
  expect(removed.stdout).toContain(`${id} deleted`);
  plane.terminate(sessionId);
}, 150_000);
