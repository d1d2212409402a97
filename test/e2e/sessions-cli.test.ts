/**
 * The session commands of the `berth` CLI and their SDK calls, end to end: the built CLI as a
 * subprocess and the SDK against a real server, with the real Claude Agent SDK, the real `claude`
 * binary in real runc sandboxes and a FAKE model server (test/fixtures/fake-model) as the only
 * stand-in. Covers `agent run --file` and `--resume-from`, `agent workspace`, `agent fork` and
 * `agent permit`, and `Sessions.workspace`, `fork`, `answerPermission`, `create({resumeFrom})`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BerthClient, type SessionEvent, Sessions } from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  lastUserText,
  MarkerScripts,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { type CliRun, runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { waitFor } from "../support/wait.js";

let model: FakeModel;
let server: TestServer;
let sessions: Sessions;
let work: string;
const scripts = new MarkerScripts();

beforeAll(async () => {
  // The CLI runs from its build.
  await promisify(execFile)("npx", ["tsc", "-b", "packages/cli"], {
    cwd: join(import.meta.dirname, "..", ".."),
  });
  model = await startFakeModel(scripts.route);
  server = await startTestServer({
    env: { BERTH_ANTHROPIC_API_KEY: "sk-ant-fake-cli", BERTH_ANTHROPIC_BASE_URL: model.url },
  });
  sessions = new Sessions(new BerthClient({ apiUrl: server.url, apiKey: server.adminKey }));
  work = mkdtempSync(join(tmpdir(), "berth-sessions-cli-"));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await model?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const berth = (args: string[]): Promise<CliRun> => runBerth(server, args, { cwd: work });
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
const until = (id: string, states: string[]) => sessionIn((p) => call("GET", p), id, states);
/** The session id `agent run` names on stderr. */
const sessionOf = (r: CliRun) => /session (ses_\S+)/.exec(r.stderr)?.[1] ?? "";
/** Every tool result the model was sent for requests of `marker`, as text. */
const toolResults = (marker: string) =>
  JSON.stringify(
    model
      .turns()
      .filter((t) => JSON.stringify(t.body).includes(marker))
      .map((t) => t.body.messages),
  );

/** One Bash call running `command`, then a text answer naming the marker. */
function bashOnce(command: string, answer: string) {
  return (body: any) => {
    const done = (body.messages as any[]).some(
      (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
    );
    return done
      ? { kind: "text" as const, text: answer }
      : { kind: "tool_use" as const, name: "Bash", input: { command, description: "work" } };
  };
}

describe("session commands of the CLI and the SDK", () => {
  it("agent run --file puts the file in the working directory; agent workspace and Sessions.workspace download it after the session ended", async () => {
    const marker = `file-${Date.now()}`;
    const content = `rows of ${marker}\n`;
    writeFileSync(join(work, "data.txt"), content);
    scripts.set(marker, bashOnce("cat data.txt && echo made > report.md", `read ${marker}`));
    const r = await berth(["agent", "run", "--file", join(work, "data.txt"), `${marker} read data.txt`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const id = sessionOf(r);
    expect(id).toMatch(/^ses_/);
    // The agent's tool saw the file's content.
    expect(toolResults(marker)).toContain(`rows of ${marker}`);
    // The ephemeral session's sandbox is gone; its kept workspace has the input and the output.
    const tar = await berth(["agent", "workspace", id]);
    expect(tar.code, tar.stderr).toBe(0);
    expect(tar.stdout).toContain("data.txt");
    expect(tar.stdout).toContain("report.md");
    expect(tar.stdout).toContain(`rows of ${marker}`);
    const viaSdk = Buffer.from(await sessions.workspace(id)).toString("latin1");
    expect(viaSdk).toContain(`rows of ${marker}`);
    expect(viaSdk).toContain("report.md");
  }, 150_000);

  it("agent run --resume-from and Sessions.create({resumeFrom}) continue an ended session's conversation", async () => {
    const marker = `resume-${Date.now()}`;
    scripts.set(marker, (body: any) => ({ kind: "text" as const, text: `answer to ${lastUserText(body)}` }));
    const first = await berth(["agent", "run", `${marker} first`]);
    expect(first.code, first.stderr).toBe(0);
    const id = sessionOf(first);
    const again = await berth(["agent", "run", "--resume-from", id, `${marker} second`]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const asked = model.turns().find((t) => lastUserText(t.body).includes(`${marker} second`));
    // The model got the earlier turn with the new message.
    expect(JSON.stringify(asked?.body.messages)).toContain(`${marker} first`);
    const viaSdk = await sessions.create({ prompt: `${marker} third`, resumeFrom: id });
    await until(viaSdk.id, ["completed", "failed"]);
    const third = model.turns().find((t) => lastUserText(t.body).includes(`${marker} third`));
    expect(JSON.stringify(third?.body.messages)).toContain(`${marker} first`);
  }, 150_000);

  it("agent fork and Sessions.fork make copies that each continue the conversation", async () => {
    const marker = `fork-${Date.now()}`;
    scripts.set(marker, (body: any) => ({ kind: "text" as const, text: `answer to ${lastUserText(body)}` }));
    const source = await sessions.create({ prompt: `${marker} source`, pattern: "long-running" });
    await until(source.id, ["idle"]);
    const r = await berth(["agent", "fork", "--count", "2", source.id, `${marker} cli copy`]);
    expect(r.code, r.stderr).toBe(0);
    const ids = [...r.stdout.matchAll(/^(ses_\S+) in sandbox/gm)].map((m) => m[1] as string);
    expect(ids).toHaveLength(2);
    const viaSdk = await sessions.fork(source.id, { count: 1, prompt: `${marker} sdk copy` });
    expect(viaSdk).toHaveLength(1);
    for (const id of [...ids, ...viaSdk.map((s) => s.id)]) {
      const s = await until(id, ["idle", "failed"]);
      expect(s.state, JSON.stringify(s)).toBe("idle");
      expect(s.sandboxId).not.toBe(source.sandboxId);
      await call("DELETE", `/v1/sessions/${id}`);
    }
    for (const copy of ["cli copy", "sdk copy"]) {
      const asked = model.turns().find((t) => lastUserText(t.body).includes(`${marker} ${copy}`));
      expect(JSON.stringify(asked?.body.messages)).toContain(`${marker} source`);
    }
    await call("DELETE", `/v1/sessions/${source.id}`);
  }, 240_000);

  it("agent permit allows a waiting Bash call; Sessions.answerPermission denies one", async () => {
    const marker = `permit-${Date.now()}`;
    scripts.set(marker, (body: any) => {
      const results = (body.messages as any[]).filter(
        (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
      ).length;
      if (results < 2)
        return {
          kind: "tool_use" as const,
          name: "Bash",
          input: { command: `touch /home/user/${marker}-${results}`, description: `call ${results}` },
        };
      return { kind: "text" as const, text: `asked twice ${marker}` };
    });
    const s = await sessions.create({
      prompt: marker,
      pattern: "long-running",
      agent: { permissionMode: "default" },
    });
    const requests: SessionEvent[] = [];
    const nextRequest = async () => {
      for await (const e of sessions.events(s.id, { lastEventId: requests.at(-1)?.id })) {
        if (e.event === "permission_request") {
          requests.push(e);
          return e.data as { id: string };
        }
      }
      throw new Error("the stream ended before a permission request");
    };
    const first = await nextRequest();
    const permit = await berth(["agent", "permit", s.id, first.id, "allow"]);
    expect(permit).toMatchObject({ code: 0, stdout: `${first.id}: allow\n` });
    const second = await nextRequest();
    await sessions.answerPermission(s.id, second.id, { behavior: "deny", message: `no ${marker}` });
    await waitFor(
      "the session's answer",
      () => sessions.get(s.id),
      (x) => x.state === "idle" || x.state === "failed",
      { timeoutMs: 90_000 },
    );
    const exists = async (p: string) =>
      (await call("POST", `/v1/sandboxes/${s.sandboxId}/exec`, { cmd: ["test", "-e", p] })).body.exitCode ===
      0;
    expect(await exists(`/home/user/${marker}-0`)).toBe(true);
    expect(await exists(`/home/user/${marker}-1`)).toBe(false);
    expect(toolResults(marker)).toContain(`no ${marker}`);
    await call("DELETE", `/v1/sessions/${s.id}`);
  }, 150_000);
});
