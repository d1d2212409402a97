/**
 * The session commands of the `berth` CLI and their SDK calls, end to end: the built CLI as a
 * subprocess and the SDK against a real server, with the real Claude Agent SDK, the real `claude`
 * binary in real runc sandboxes and a FAKE model server (test/fixtures/fake-model) as the only
 * stand-in. Covers `agent run --file`, `--skill`, `--webhook` and `--resume-from`, `agent
 * workspace`, `agent fork` and `agent permit`, and `Sessions.workspace`, `fork`,
 * `answerPermission`, `create({resumeFrom})`, `readSkillFolder`.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BerthClient, readSkillFolder, type SessionEvent, Sessions } from "@berth/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeModel,
  firstUserText,
  lastUserText,
  MarkerScripts,
  startFakeModel,
} from "../fixtures/fake-model/server.js";
import { type CliRun, runBerth } from "../support/cli.js";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { sessionIn } from "../support/sessions.js";
import { readSse } from "../support/sse.js";
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
    env: {
      BERTH_ANTHROPIC_API_KEY: "sk-ant-fake-cli",
      BERTH_ANTHROPIC_BASE_URL: model.url,
      // The webhook test's receiver is on loopback; two tries each keep its wait short.
      BERTH_WEBHOOK_ALLOW_CIDRS: "127.0.0.0/8",
      BERTH_WEBHOOK_ATTEMPTS: "2",
    },
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

  it("agent run --skill uploads a skill folder: the model is shown its description and a Skill tool call loads its SKILL.md", async () => {
    const marker = `skill-${Date.now()}`;
    const dir = join(work, "pdf-squash");
    mkdirSync(join(dir, "scripts"), { recursive: true });
    writeFileSync(
      join(dir, "SKILL.md"),
      `---\nname: pdf-squash\ndescription: Shrinks PDF files ${marker}-desc\n---\n\nRun scripts/squash.sh on the file ${marker}-body\n`,
    );
    writeFileSync(join(dir, "scripts", "squash.sh"), "#!/bin/sh\necho squashed\n");
    // The SDK's reader gives what the CLI uploads: the folder's name and every file beneath it.
    const folder = readSkillFolder(dir);
    expect(folder.name).toBe("pdf-squash");
    expect(folder.files.map((f) => f.path)).toEqual(["SKILL.md", "scripts/squash.sh"]);
    scripts.set(marker, (body) =>
      (body.messages as any[]).some(
        (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
      )
        ? { kind: "text", text: `squashed ${marker}` }
        : { kind: "tool_use", name: "Skill", input: { skill: "pdf-squash" } },
    );
    const r = await berth(["agent", "run", "--skill", dir, `${marker} make the PDF smaller`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain("> Skill");
    const turns = model.turns().filter((t) => firstUserText(t.body).includes(marker) && t.body.stream);
    // The first request lists the skill by its description, and does not yet carry its body ...
    const first = JSON.stringify(turns[0]?.body);
    expect(first).toContain(`${marker}-desc`);
    expect(first).not.toContain(`${marker}-body`);
    // ... which the Skill tool call loaded from the working directory's .claude/skills.
    const after = JSON.stringify(turns.at(-1)?.body.messages);
    expect(after).toContain(`${marker}-body`);
    expect(after).toContain(".claude/skills/pdf-squash");
    // The folder's other files went with it (kept in the ended session's workspace).
    const tar = Buffer.from(await sessions.workspace(sessionOf(r))).toString("latin1");
    expect(tar).toContain(".claude/skills/pdf-squash/scripts/squash.sh");
    // A folder that cannot be read is the CLI's usage error, before any request.
    const missing = await berth(["agent", "run", "--skill", join(work, "nope"), "x"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--skill");
  }, 150_000);

  it("agent run --webhook URL#state: a receiver answering 500 gets BERTH_WEBHOOK_ATTEMPTS tries per event, then the server gives up and says so", async () => {
    const got: { delivery: string; attempt: string; body: any }[] = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push({
          delivery: String(req.headers["berth-delivery"]),
          attempt: String(req.headers["berth-attempt"]),
          body: JSON.parse(body),
        });
        res.writeHead(500).end();
      });
    });
    await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const marker = `webhook-${Date.now()}`;
      scripts.set(marker, () => ({ kind: "text", text: `done ${marker}` }));
      const bad = await berth(["agent", "run", "--webhook", `${url}#state,bogus`, marker]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('not "bogus"');
      const r = await berth(["agent", "run", "--webhook", `${url}?token=t0p#state`, marker]);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stderr).toMatch(/webhook signing key \(shown once\): whsec_/);
      const id = sessionOf(r);
      const events = async () =>
        (
          await readSse(
            `${server.url}/v1/sessions/${id}/events`,
            { headers: { authorization: `Bearer ${server.adminKey}` } },
            { timeoutMs: 10_000 },
          )
        ).events;
      // The stream of the ended session ends after the last webhook_failed (recorded after the end).
      const all = await waitFor(
        "a webhook_failed event for each state event",
        events,
        (es) => {
          const states = es.filter((e) => e.event === "state").map((e) => Number(e.id));
          const failed = new Set(es.filter((e) => e.event === "webhook_failed").map((e) => e.data.eventSeq));
          return states.length > 0 && states.every((seq) => failed.has(seq));
        },
        { timeoutMs: 60_000, everyMs: 500 },
      );
      const failed = all.filter((e) => e.event === "webhook_failed");
      for (const f of failed)
        expect(f.data).toMatchObject({ url, attempts: 2, error: "HTTP 500", eventType: "state" });
      // Each state event was tried exactly twice under one delivery id (1, then 2), never a third time.
      const states = all.filter((e) => e.event === "state");
      for (const s of states) {
        const tries = got.filter((g) => g.body.seq === Number(s.id));
        expect(tries.map((t) => t.attempt)).toEqual(["1", "2"]);
        expect(new Set(tries.map((t) => t.delivery)).size).toBe(1);
      }
      // Only the kinds asked for went out, and the log says it gave up (without the query's token).
      expect(got.every((g) => g.body.type === "state")).toBe(true);
      const gaveUp = server.logLines.filter((l) => l.includes("gave up") && l.includes(id));
      expect(gaveUp.length).toBe(states.length);
      expect(gaveUp.join("\n")).not.toContain("t0p");
      expect(JSON.stringify(failed)).not.toContain("t0p");
    } finally {
      receiver.close();
    }
  }, 150_000);

  it("agent run --permission-mode default --hook Read --output-schema FILE --partial --json: both kinds of request are answered with agent permit, deltas stream, the structured answer ends it", async () => {
    const marker = `control-${Date.now()}`;
    const answer = { squashed: true, marker };
    const schemaFile = join(work, "answer.schema.json");
    writeFileSync(
      schemaFile,
      JSON.stringify({
        type: "object",
        properties: { squashed: { type: "boolean" }, marker: { type: "string" } },
        required: ["squashed", "marker"],
      }),
    );
    scripts.set(marker, (body: any) => {
      const tools = ((body.tools ?? []) as { name: string }[]).map((t) => t.name);
      const results = (body.messages as any[]).filter(
        (m) => Array.isArray(m.content) && m.content.some((b: any) => b.type === "tool_result"),
      ).length;
      // A Bash call (asked by the permission mode), then a Read (asked by the hook: Read needs no permission).
      if (results === 0)
        return {
          kind: "tool_use" as const,
          name: "Bash",
          input: { command: `touch /tmp/${marker}`, description: "touch" },
          text: `about to touch ${marker}`,
        };
      if (results === 1)
        return { kind: "tool_use" as const, name: "Read", input: { file_path: "/etc/hostname" } };
      if (tools.includes("StructuredOutput") && results === 2)
        return { kind: "tool_use" as const, name: "StructuredOutput", input: answer };
      return { kind: "text" as const, text: JSON.stringify(answer) };
    });
    const run = berth([
      "agent",
      "run",
      "--json",
      "--permission-mode",
      "default",
      "--hook",
      "Read",
      "--output-schema",
      schemaFile,
      "--partial",
      `${marker} touch it`,
    ]);
    let exited = false;
    void run.then(() => (exited = true));
    // Answer every request the session raises (the permission mode's, then the hook's) until the CLI exits.
    const session = await waitFor(
      "the CLI's session",
      async () => (await sessions.list()).find((x) => x.prompt?.includes(marker)),
      (x) => x !== undefined,
      { timeoutMs: 60_000 },
    );
    const id = session?.id ?? "";
    const answered = new Set<string>();
    const sources = new Set<string>();
    while (!exited) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 2_000);
      try {
        for await (const e of sessions.events(id, { signal: ac.signal, untilIdle: true }))
          if (e.event === "permission_request" && !answered.has(e.data.id)) {
            answered.add(e.data.id);
            sources.add(e.data.source);
            const permit = await berth(["agent", "permit", id, e.data.id, "allow"]);
            expect(permit.code, permit.stderr).toBe(0);
          }
      } catch {
        // The 2 s look ended; look again while the CLI runs.
      } finally {
        clearTimeout(timer);
      }
    }
    const r = await run;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect([...sources].sort()).toEqual(["permission", "pre_tool_use"]);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.event === "message" && l.data.type === "stream_event")).toBe(true);
    const end = lines.at(-1);
    expect(end.event).toBe("session");
    expect(end.data.structuredOutput).toEqual(answer);
    // A mode that is not one is the CLI's usage error.
    const bad = await berth(["agent", "run", "--permission-mode", "yolo", "x"]);
    expect(bad.code).toBe(2);
  }, 150_000);

  it("agent run --pattern hybrid, then two lines piped to agent attach are answered in order; sandbox rm refuses a sandbox in use, --force ends its session sandbox_lost", async () => {
    const marker = `queue-${Date.now()}`;
    scripts.set(marker, (body: any) => ({ kind: "text" as const, text: `re: ${lastUserText(body)}` }));
    const r = await berth(["agent", "run", "--pattern", "hybrid", `${marker} start`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const id = sessionOf(r);
    const sandboxId = /in sandbox (\S+)/.exec(r.stderr)?.[1] ?? "";
    const attach = await runBerth(server, ["agent", "attach", id], {
      cwd: work,
      input: `${marker} first\n${marker} second\n`,
      env: { BERTH_RECONNECT_SECONDS: "120" },
    });
    expect(attach.code, attach.stderr).toBe(0);
    const at = (text: string) => {
      const i = attach.stdout.indexOf(text);
      expect(i, `${text} in ${attach.stdout}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at(`» ${marker} first`)).toBeLessThan(at(`re: ${marker} first`));
    expect(at(`re: ${marker} first`)).toBeLessThan(at(`re: ${marker} second`));
    const inUse = await berth(["sandbox", "rm", sandboxId]);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toContain("in_use");
    const forced = await berth(["sandbox", "rm", "--force", sandboxId]);
    expect(forced.code, forced.stderr).toBe(0);
    const ended = await until(id, ["failed"]);
    expect(ended.failure.code).toBe("sandbox_lost");
  }, 150_000);
});
