/**
 * What sessions take in and leave behind, end to end: the real Claude Agent SDK in the server,
 * the real `claude` binary in real runc sandboxes, and a FAKE model server
 * (test/fixtures/fake-model) as the only stand-in. Input files in the create call, the workspace
 * of an ephemeral session downloaded after its sandbox is gone, an ended session resumed with
 * its earlier turns, and a fork into three sessions that diverge.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isToolResult, lastUserText } from "../fixtures/fake-model/server.js";
import { useAgentServer } from "../support/agent-server.js";
import { waitFor } from "../support/wait.js";

const agent = useAgentServer("outputs");
const { scripts, call } = agent;
const until = (id: string, states: string[]) => agent.until(id, states);
const askedAbout = (text: string) =>
  waitFor(
    `the model to be asked "${text}"`,
    () => agent.model.turns().find((r) => lastUserText(r.body).includes(text)),
    (t) => t !== undefined,
    { timeoutMs: 90_000 },
  ).then((t) => t as NonNullable<typeof t>);

/** The session's workspace tar, unpacked on the host: file name -> content. */
async function workspaceOf(id: string): Promise<{ status: number; files: Record<string, string> }> {
  const res = await fetch(`${agent.server.url}/v1/sessions/${id}/workspace`, {
    headers: { authorization: `Bearer ${agent.server.adminKey}` },
  });
  if (res.status !== 200) return { status: res.status, files: {} };
  const dir = mkdtempSync("/tmp/berth-ws-");
  try {
    writeFileSync(join(dir, "w.tar"), Buffer.from(await res.arrayBuffer()));
    execFileSync("mkdir", ["-p", join(dir, "x")]);
    execFileSync("tar", ["-x", "-f", join(dir, "w.tar"), "-C", join(dir, "x")]);
    const names = execFileSync("find", [".", "-type", "f"], { cwd: join(dir, "x"), encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map((n) => n.replace(/^\.\//, ""));
    return {
      status: 200,
      files: Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, "x", n), "utf8")])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("session inputs and outputs", () => {
  it("an ephemeral session gets input files before its first turn, and its outputs download after its sandbox is gone", async () => {
    const marker = `io-${Date.now()}`;
    scripts.set(marker, (body) =>
      isToolResult(body)
        ? { kind: "text", text: "copied" }
        : {
            kind: "tool_use",
            name: "Bash",
            input: { command: "tr a-z A-Z < in/data.txt > out.txt", description: "transform" },
          },
    );
    const created = await call("POST", "/v1/sessions", {
      prompt: marker,
      files: [{ path: "in/data.txt", content: `hello ${marker}` }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await until(created.body.id, ["completed", "failed"]);
    expect(done.state, JSON.stringify(done)).toBe("completed");
    expect((await call("GET", `/v1/sandboxes/${done.sandboxId}`)).body.state).toBe("deleted");
    const ws = await workspaceOf(done.id);
    expect(ws.status).toBe(200);
    expect(ws.files["in/data.txt"]).toBe(`hello ${marker}`);
    expect(ws.files["out.txt"]).toBe(`HELLO ${marker.toUpperCase()}`);
  }, 150_000);

  it("rejects input files that leave the working directory, and resuming a session that is not ended", async () => {
    const outside = await call("POST", "/v1/sessions", {
      prompt: "x",
      files: [{ path: "../../etc/evil", content: "x" }],
    });
    expect(outside.status).toBe(400);
    expect(outside.body.error.details.field).toBe("files[0].path");
    const missing = await call("POST", "/v1/sessions", { prompt: "x", resumeFrom: "ses_nope" });
    expect(missing.status).toBe(404);
    expect((await call("GET", "/v1/sessions/ses_nope/workspace")).status).toBe(404);
  });

  it("a session resumed after it ended (its sandbox gone) remembers the earlier turns", async () => {
    const marker = `resume-${Date.now()}`;
    scripts.set(marker, (body) => ({
      kind: "text",
      text: lastUserText(body).includes("which word") ? `the word was ${marker}` : `remembered ${marker}`,
    }));
    const first = await call("POST", "/v1/sessions", { prompt: `${marker}: remember this word` });
    const ended = await until(first.body.id, ["completed", "failed"]);
    expect(ended.state).toBe("completed");
    // Resuming a live session is refused: it takes messages instead.
    const live = await call("POST", "/v1/sessions", { prompt: "x", pattern: "long-running" });
    await until(live.body.id, ["idle"]);
    const refused = await call("POST", "/v1/sessions", { prompt: "x", resumeFrom: live.body.id });
    expect(refused.status).toBe(409);
    await call("DELETE", `/v1/sessions/${live.body.id}`);
    await call("DELETE", `/v1/sandboxes/${live.body.sandboxId}`);

    const again = await call("POST", "/v1/sessions", {
      prompt: `which word ${marker}`,
      resumeFrom: ended.id,
    });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body.sandboxId).not.toBe(ended.sandboxId);
    const asked = JSON.stringify((await askedAbout(`which word ${marker}`)).body.messages);
    expect(asked).toContain(`${marker}: remember this word`);
    expect(asked).toContain(`remembered ${marker}`);
    const done = await until(again.body.id, ["completed", "failed"]);
    expect(done.result.result).toBe(`the word was ${marker}`);
  }, 150_000);

  it("a fork of 3 makes 3 sessions, each with the source's files and conversation, that diverge", async () => {
    const marker = `fork-${Date.now()}`;
    let branch = 0;
    scripts.set(marker, (body) => {
      if (isToolResult(body)) return { kind: "text", text: "done" };
      if (lastUserText(body).includes("try your way")) {
        // Each copy is asked the same; each answers its own way (best-of-N).
        branch++;
        return {
          kind: "tool_use",
          name: "Bash",
          input: { command: `echo attempt-${branch} >> notes.txt`, description: "attempt" },
        };
      }
      return {
        kind: "tool_use",
        name: "Bash",
        input: { command: `echo base-${marker} > notes.txt`, description: "base" },
      };
    });
    const source = await call("POST", "/v1/sessions", { prompt: `${marker} start`, pattern: "long-running" });
    expect(source.status, JSON.stringify(source.body)).toBe(201);
    const before = await until(source.body.id, ["idle"]);
    const forked = await call("POST", `/v1/sessions/${source.body.id}/fork`, {
      count: 3,
      prompt: `try your way ${marker}`,
    });
    expect(forked.status, JSON.stringify(forked.body)).toBe(201);
    const copies = forked.body.items as { id: string; sandboxId: string }[];
    expect(copies).toHaveLength(3);
    expect(new Set(copies.map((c) => c.sandboxId)).size).toBe(3);
    expect(copies.map((c) => c.sandboxId)).not.toContain(source.body.sandboxId);
    const notes: string[] = [];
    for (const c of copies) {
      const s = await until(c.id, ["idle", "failed"]);
      expect(s.state, JSON.stringify(s)).toBe("idle");
      const cat = await call("POST", `/v1/sandboxes/${c.sandboxId}/exec`, {
        cmd: ["cat", "/home/user/notes.txt"],
      });
      // The source's file came along, then each copy added its own attempt.
      expect(cat.body.stdout).toMatch(new RegExp(`^base-${marker}\\nattempt-\\d\\n$`));
      notes.push(cat.body.stdout);
      // Each copy is a conversation of its own, not the source's.
      expect(s.agentSessionId).not.toBe(before.agentSessionId);
    }
    expect(new Set(notes).size).toBe(3);
    // Every copy's model turn had the source's conversation before it.
    const turns = agent.model.turns().filter((t) => lastUserText(t.body).includes(`try your way ${marker}`));
    expect(turns.length).toBeGreaterThanOrEqual(3);
    for (const t of turns) expect(JSON.stringify(t.body.messages)).toContain(`${marker} start`);
    // The source is untouched and goes on.
    const src = await call("POST", `/v1/sandboxes/${source.body.sandboxId}/exec`, {
      cmd: ["cat", "/home/user/notes.txt"],
    });
    expect(src.body.stdout).toBe(`base-${marker}\n`);
    for (const c of [...copies, source.body]) {
      await call("DELETE", `/v1/sessions/${c.id}`);
      await call("DELETE", `/v1/sandboxes/${c.sandboxId}`);
    }
  }, 240_000);
});
