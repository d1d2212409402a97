// A newcomer with no model key: `berth agent run` says at once what to set (exit 2), and
// `--demo` runs a whole session on Berth's scripted demo model (served by the server's own
// gateway, never Claude): the real `claude` binary in a real sandbox makes a Bash tool call.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBerth } from "../support/cli.js";
import { startTestServer, type TestServer } from "../support/server.js";

const root = join(import.meta.dirname, "..", "..");
let server: TestServer;

beforeAll(async () => {
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], { cwd: root });
  // No BERTH_ANTHROPIC_API_KEY: the server has no way to reach a real model.
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("agents without a model key", () => {
  it("berth agent run says at once what to set and exits 2", async () => {
    const t0 = Date.now();
    const r = await runBerth(server, ["agent", "run", "hello"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("the server has no model API key");
    expect(r.stderr).toContain("Set BERTH_ANTHROPIC_API_KEY");
    expect(r.stderr).toContain("berth agent run --demo");
    // "At once": no sandbox was made, no session waits for a model that never answers.
    console.log(`agent run without a key answered in ${Date.now() - t0} ms`);
  });

  it("--demo runs a labelled session end to end: a Bash tool call in the sandbox and its result", async () => {
    const r = await runBerth(server, ["agent", "run", "--demo", "show me what you can do"]);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stderr).toContain("DEMO: the model is berth-demo, a script served by Berth itself, not Claude");
    const lines = r.stdout.split("\n");
    // Every model reply says it is the demo; the tool ran in the sandbox as its user.
    const replies = lines.filter((l) => l.startsWith("[berth-demo"));
    expect(replies.length).toBeGreaterThanOrEqual(2);
    for (const l of replies) expect(l).toMatch(/^\[berth-demo: a scripted demo model, not Claude\]/);
    expect(r.stdout).toMatch(/^> Bash \{"command":"echo \\"hello from/m);
    expect(r.stdout).toMatch(/^< hello from sb[a-z0-9]{16} as uid 1000/m);
    expect(r.stdout).toMatch(/printed:\nhello from sb[a-z0-9]{16} as uid 1000/);
    expect(r.stdout).toMatch(/^= success: 2 turns/m);
    // It cost nothing in tokens: the demo model is not metered as a real one.
    expect(r.stdout).toMatch(/tokens 0\.0000 \+ compute/);
  });

  it("--demo and --model together are a usage error", async () => {
    const r = await runBerth(server, ["agent", "run", "--demo", "--model", "claude-x", "hi"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--demo and --model cannot be used together");
  });
});
