import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import {
  type AgentSpec,
  BerthError,
  type SessionEvent,
  type SessionFailure,
  type SessionPattern,
  Sessions,
  type SessionView,
} from "@berth/sdk";
import { parseDuration, parseNumber, UsageError } from "../args.js";
import type { Command, Context } from "../command.js";
import { parseWebhook, skillFolder, toolControl } from "./agent-spec.js";

const PATTERNS: SessionPattern[] = ["ephemeral", "long-running", "hybrid", "shared"];

/**
 * How long a dropped event stream is retried without an event (BERTH_RECONNECT_SECONDS, default
 * the SDK's 60 s), so `agent run` and `agent attach` ride out a server restart.
 */
export function reconnectForMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.BERTH_RECONNECT_SECONDS;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`BERTH_RECONNECT_SECONDS must be a number of seconds, got "${raw}"`, "");
  return n * 1000;
}
/** Tool output shown per call (the rest is cut). */
const TOOL_OUTPUT_CHARS = 400;

/** One event as a person reads it (nothing for events that say nothing new). */
export function describeEvent(e: SessionEvent): string | null {
  if (e.event === "state")
    return `[${e.data.state}${e.data.failure ? `: ${describeFailure(e.data.failure)}` : e.data.reason ? `: ${e.data.reason}` : ""}]`;
  if (e.event === "user_message") return `» ${e.data.text}`.replace(/\n/g, "\n  ");
  if (e.event === "permission_request")
    return `? ${e.data.tool} ${JSON.stringify(e.data.input)} waits for permission: berth agent permit SESSION ${e.data.id} allow|deny`;
  if (e.event === "permission_resolved")
    return `? ${e.data.id}: ${e.data.behavior} (${e.data.by}${e.data.message ? `: ${e.data.message}` : ""})`;
  if (e.event === "webhook_failed")
    return `! webhook ${e.data.url} gave up on event ${e.data.eventSeq} (${e.data.eventType}) after ${e.data.attempts} attempts: ${e.data.error}`;
  if (e.event === "tool_oom")
    return `! out of memory: the OOM killer ended ${e.data.tool ? `a ${e.data.tool} tool call` : "a tool"} (${e.data.kills} process(es)); the agent goes on`;
  if (e.event !== "message") return null;
  const m = e.data;
  // The model API failed and the agent tries again: shown, so a slow turn is not a mystery.
  if (m.type === "system" && m.subtype === "api_retry")
    return `~ the model API ${m.error_status ? `answered ${m.error_status}` : "did not answer"}; retry ${m.attempt}/${m.max_retries} in ${(Number(m.retry_delay_ms ?? 0) / 1000).toFixed(1)} s`;
  if (m.type === "assistant") {
    const parts: string[] = [];
    for (const b of m.message?.content ?? []) {
      if (b.type === "text") parts.push(b.text);
      else if (b.type === "tool_use") parts.push(`> ${b.name} ${JSON.stringify(b.input)}`);
    }
    return parts.length ? parts.join("\n") : null;
  }
  if (m.type === "user" && Array.isArray(m.message?.content)) {
    type Block = { type: string; content?: unknown };
    const results = (m.message.content as Block[]).filter((b) => b.type === "tool_result");
    if (results.length === 0) return null;
    return results
      .map((b) => {
        const text = typeof b.content === "string" ? b.content : JSON.stringify(b.content);
        const cut = text.length > TOOL_OUTPUT_CHARS ? `${text.slice(0, TOOL_OUTPUT_CHARS)}...` : text;
        return `< ${cut}`.replace(/\n/g, "\n  ");
      })
      .join("\n");
  }
  // The SDK's own total_cost_usd is not shown: Berth's figure (describeCost) is the one billed.
  if (m.type === "result")
    return `= ${m.is_error && m.subtype === "success" ? "error" : m.subtype}: ${m.num_turns} turns${m.result ? `\n${m.result}` : ""}`;
  return null;
}

/** A failure as one line: `code (status): message`. */
export function describeFailure(f: SessionFailure): string {
  return `${f.code}${f.upstreamStatus !== undefined ? ` (${f.upstreamStatus})` : ""}: ${f.message}`;
}

/** Berth's cost figure of a session (tokens at its price table + compute), the one billed. */
export function describeCost(s: Pick<SessionView, "cost" | "usage">): string {
  const c = s.cost;
  return `cost USD ${c.totalUsd.toFixed(4)} (tokens ${c.tokensUsd.toFixed(4)} + compute ${c.computeUsd.toFixed(4)}; ${s.usage.inputTokens} in / ${s.usage.outputTokens} out tokens)`;
}

/** How a session ended (or its last turn did), as lines for a person. */
function describeOutcome(s: SessionView): string {
  return [
    `${s.state}${s.failure ? ` · failed: ${describeFailure(s.failure)}` : ""}`,
    ...(s.structuredOutput !== null && s.structuredOutput !== undefined
      ? [`structured output: ${JSON.stringify(s.structuredOutput)}`]
      : []),
    describeCost(s),
  ].join("\n");
}

function print(e: SessionEvent, ctx: Context): void {
  if (ctx.json) {
    ctx.out(JSON.stringify({ event: e.event, id: e.id, data: e.data }));
    return;
  }
  const text = describeEvent(e);
  if (text !== null) ctx.out(text);
}

/** The demo model's name (served by Berth's gateway; see the server's demo/demo-model.ts). */
export const DEMO_MODEL = "berth-demo";

/** The server has no model key: a usage error (exit 2) that says what to set, or how to try the demo. */
function noModelKey(err: BerthError): UsageError {
  return new UsageError(
    `the server has no model API key (${err.message}).
  Set BERTH_ANTHROPIC_API_KEY in the server's environment and restart it (npm start), or
  try Berth's scripted demo model, which needs no key: berth agent run --demo 'hello'`,
    "",
  );
}

/** `berth agent run`. */
export const agentRun: Command = {
  summary: "run an agent with a prompt",
  usage: `Usage: berth agent run [options] PROMPT

Starts an agent session, prints the conversation as it happens (and the model API's errors
the agent retries, as "~ ..."), then the session's state, why it failed if it did (failure code,
the model API's status, message) and Berth's cost figure (the one billed: tokens + compute).
Exits 0 when the agent succeeded, 1 otherwise. The session id goes to stderr first. With --json,
every event is a JSON line and the last line is the session ({"event":"session","data":...}).

Options:
  --pattern P       ephemeral (default), long-running, hybrid or shared
  --sandbox ID      run in this existing sandbox (long-running, hybrid, shared)
  --max-turns N     turn limit
  --budget USD      token budget (the model gateway refuses past it)
  --max-duration D  wall-clock limit (30s, 10m, 2h; bare numbers are seconds)
  --model M         model name
  --file PATH       put this local file in the working directory first (repeatable)
  --permission-mode M  default, acceptEdits, bypassPermissions (the default) or plan; tool
                    calls that need permission wait: answer with \`berth agent permit\`
  --hook TOOL       ask before each call of TOOL (a PreToolUse hook; repeatable), answered
                    with \`berth agent permit\` like a permission request
  --output-schema FILE  the final answer must satisfy this JSON Schema; it is printed at the end
  --partial         stream partial assistant messages too (shown with --json)
  --skill DIR       upload this skill folder (a SKILL.md with front matter and its files) to
                    the working directory's .claude/skills/<folder name>/ (repeatable)
  --webhook URL[#EVENTS]
                    POST the session's events to URL, signed (repeatable); EVENTS is a comma
                    list of state, message, user_message, permission_request,
                    permission_resolved (default state). The signing key goes to stderr.
  --resume-from ID  continue an ended session's conversation
  --demo            use Berth's scripted DEMO model (\`berth-demo\`, not Claude; needs no key):
                    it runs one command in the sandbox and reports it, to show a session end to end
  --json            print every event as a JSON line

With no model key on the server (BERTH_ANTHROPIC_API_KEY), it says so at once and exits 2.`,
  options: {
    file: { type: "string", multiple: true },
    "permission-mode": { type: "string" },
    hook: { type: "string", multiple: true },
    "output-schema": { type: "string" },
    partial: { type: "boolean" },
    skill: { type: "string", multiple: true },
    webhook: { type: "string", multiple: true },
    "resume-from": { type: "string" },
    pattern: { type: "string" },
    sandbox: { type: "string" },
    "max-turns": { type: "string" },
    budget: { type: "string" },
    "max-duration": { type: "string" },
    model: { type: "string" },
    demo: { type: "boolean" },
  },
  async run(args, ctx) {
    const prompt = args.positionals.join(" ");
    if (!prompt) throw new UsageError("expected a PROMPT", ctx.usage);
    const v = args.values;
    const pattern = (v.pattern as SessionPattern | undefined) ?? "ephemeral";
    if (!PATTERNS.includes(pattern))
      throw new UsageError(`--pattern must be one of ${PATTERNS.join(", ")}`, ctx.usage);
    const agent: AgentSpec = {
      maxTurns: parseNumber(v["max-turns"], "max-turns", ctx.usage, { integer: true }),
      maxBudgetUsd: parseNumber(v.budget, "budget", ctx.usage),
      maxDurationSeconds: parseDuration(v["max-duration"], "max-duration", ctx.usage),
      model: v.demo ? DEMO_MODEL : (v.model as string | undefined),
      ...toolControl(v, ctx.usage),
    };
    if (v.demo && v.model) throw new UsageError("--demo and --model cannot be used together", ctx.usage);
    const sessions = new Sessions(ctx.client());
    const s = await sessions
      .create({
        prompt,
        pattern,
        ...(v.sandbox ? { sandbox: { id: v.sandbox as string } } : {}),
        agent: JSON.parse(JSON.stringify(agent)) as AgentSpec,
        ...(v.file
          ? {
              files: (v.file as string[]).map((f) => ({
                path: basename(f),
                content: readFileSync(f).toString("base64"),
                encoding: "base64" as const,
              })),
            }
          : {}),
        ...(v.skill ? { skills: (v.skill as string[]).map((d) => skillFolder(d, ctx.usage)) } : {}),
        ...(v.webhook ? { webhooks: (v.webhook as string[]).map((w) => parseWebhook(w, ctx.usage)) } : {}),
        ...(v["resume-from"] ? { resumeFrom: v["resume-from"] as string } : {}),
      })
      .catch((err: unknown) => {
        if (err instanceof BerthError && err.code === "model_unavailable") throw noModelKey(err);
        throw err;
      });
    if (v.demo) ctx.err(`DEMO: the model is ${DEMO_MODEL}, a script served by Berth itself, not Claude`);
    ctx.err(`session ${s.id} in sandbox ${s.sandboxId}`);
    if (s.webhookSecret) ctx.err(`webhook signing key (shown once): ${s.webhookSecret}`);
    let ok = false;
    const reconnect = reconnectForMs();
    for await (const e of sessions.events(s.id, {
      untilIdle: true,
      ...(reconnect !== undefined ? { reconnectForMs: reconnect } : {}),
    })) {
      print(e, ctx);
      if (e.event === "message" && e.data.type === "result") ok = e.data.is_error === false;
    }
    // The session's record has the failure and Berth's cost once its state has settled.
    const end = await sessions.get(s.id);
    if (ctx.json) ctx.out(JSON.stringify({ event: "session", data: end }));
    else ctx.out(describeOutcome(end));
    return ok && !end.failure ? 0 : 1;
  },
};

/** `berth agent show`. */
export const agentShow: Command = {
  summary: "show an agent session: state, failure and cost",
  usage: `Usage: berth agent show ID

Prints the session's state, pattern, sandbox, turns, why it failed (failure code, the model
API's status for model_error, message) and Berth's cost figure (tokens + compute).`,
  options: {},
  async run(args, ctx) {
    const id = args.positionals[0];
    if (!id || args.positionals.length > 1) throw new UsageError("expected one session ID", ctx.usage);
    const s = await new Sessions(ctx.client()).get(id);
    if (ctx.json) {
      ctx.out(JSON.stringify(s, null, 2));
      return 0;
    }
    ctx.out(
      [`session ${s.id} · ${s.pattern} · sandbox ${s.sandboxId} · ${s.turns} turns`, describeOutcome(s)].join(
        "\n",
      ),
    );
    return 0;
  },
};

/** `berth agent fork`. */
export const agentFork: Command = {
  summary: "copy a session (files and conversation) into N new ones",
  usage: `Usage: berth agent fork [--count N] ID PROMPT

Makes N (default 1, at most 10) sessions, each in a new sandbox with a copy of the session's
working directory and conversation, each sent PROMPT. Prints their ids.`,
  options: { count: { type: "string" } },
  async run(args, ctx) {
    const [id, ...words] = args.positionals;
    if (!id || words.length === 0) throw new UsageError("expected ID and PROMPT", ctx.usage);
    const count = parseNumber(args.values.count, "count", ctx.usage, { integer: true }) ?? 1;
    const made = await new Sessions(ctx.client()).fork(id, { count, prompt: words.join(" ") });
    for (const s of made) ctx.out(ctx.json ? JSON.stringify(s) : `${s.id} in sandbox ${s.sandboxId}`);
    return 0;
  },
};

/** `berth agent workspace`. */
export const agentWorkspace: Command = {
  summary: "download a session's working directory as tar",
  usage: `Usage: berth agent workspace ID > workspace.tar

Writes the session's working directory as a tar to standard output: taken now while the session
runs, else the copy kept when it ended (BERTH_SESSION_OUTPUTS_SECONDS on the server).`,
  options: {},
  async run(args, ctx) {
    const id = args.positionals[0];
    if (!id || args.positionals.length > 1) throw new UsageError("expected one session ID", ctx.usage);
    const tar = await new Sessions(ctx.client()).workspace(id);
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(tar, (err) => (err ? reject(err) : resolve())),
    );
    return 0;
  },
};

/** `berth agent permit`. */
export const agentPermit: Command = {
  summary: "allow or deny a tool call that waits for permission",
  usage: `Usage: berth agent permit [--message TEXT] SESSION REQUEST allow|deny

Answers a permission request of a session (shown by \`agent run\` and \`agent attach\` as
"? TOOL INPUT waits for permission"). A denied call is not run; the agent is told --message.
Requests not answered in BERTH_AGENT_PERMISSION_TIMEOUT_SECONDS are denied.`,
  options: { message: { type: "string" } },
  async run(args, ctx) {
    const [id, requestId, behavior, ...rest] = args.positionals;
    if (!id || !requestId || rest.length > 0 || (behavior !== "allow" && behavior !== "deny"))
      throw new UsageError("expected SESSION REQUEST allow|deny", ctx.usage);
    const message = args.values.message as string | undefined;
    await new Sessions(ctx.client()).answerPermission(id, requestId, {
      behavior,
      ...(message ? { message } : {}),
    });
    ctx.out(`${requestId}: ${behavior}`);
    return 0;
  },
};

/** `berth agent attach`. */
export const agentAttach: Command = {
  summary: "follow an agent session and talk to it",
  usage: `Usage: berth agent attach ID

Prints the session's conversation from the start and follows it live. Each line typed on
standard input is sent as the next message (a hybrid session wakes for it). Exits when the
session ends, or when input has ended and the agent has answered the last message.`,
  options: {},
  async run(args, ctx) {
    const id = args.positionals[0];
    if (!id || args.positionals.length > 1) throw new UsageError("expected one session ID", ctx.usage);
    const sessions = new Sessions(ctx.client());
    await sessions.get(id);
    const stop = new AbortController();
    const input = createInterface({ input: process.stdin, terminal: false });
    // Once input ends, the answer to the last message is still awaited: the next rest after it.
    let lastSent = 0;
    let inputDone = false;
    const sending = (async () => {
      for await (const line of input) {
        if (!line.trim()) continue;
        lastSent = Date.now();
        await sessions.send(id, line);
      }
      inputDone = true;
      if (lastSent === 0) stop.abort();
    })();
    const resting = (e: SessionEvent) =>
      e.event === "state" &&
      ["idle", "hibernated", "completed", "failed", "cancelled"].includes(e.data.state) &&
      Date.parse(e.data.at) >= lastSent;
    try {
      const reconnect = reconnectForMs();
      for await (const e of sessions.events(id, {
        signal: stop.signal,
        ...(reconnect !== undefined ? { reconnectForMs: reconnect } : {}),
      })) {
        print(e, ctx);
        if (inputDone && lastSent > 0 && resting(e)) break;
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      input.close();
    }
    await sending.catch(() => {});
    return 0;
  },
};
