import {
  type CanUseTool,
  type HookCallbackMatcher,
  type Options,
  type PermissionMode,
  prewarm,
  type Query,
  query,
  type SDKMessage,
  type SDKUserMessage,
  type SpareProcess,
} from "@anthropic-ai/claude-agent-sdk";
import type { AgentOptions, Logger } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { SandboxProcess } from "./sandbox-process.js";

/** Env var names whose values a sandbox must never get from the host. */
const HOST_ONLY = /^BERTH_/;
/**
 * The SDK drops HOME from what it hands a custom spawn (the host's home means nothing there);
 * a session's own HOME is passed on. (CLAUDE_CONFIG_DIR is not used: with it set, `claude`
 * ignores ANTHROPIC_API_KEY.)
 */
const SANDBOX_PATHS = ["HOME"];

function pick(env: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => env[k] !== undefined).map((k) => [k, env[k] as string]));
}

/** User turns for the SDK's streaming-input mode: pushed by the API, pulled by the SDK. */
class TurnQueue implements AsyncIterable<SDKUserMessage> {
  private readonly items: SDKUserMessage[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  push(text: string): void {
    this.items.push({ type: "user", message: { role: "user", content: text }, parent_tool_use_id: null });
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SDKUserMessage> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = null;
    }
  }
}

/** What an agent run needs to start `claude` in a sandbox. */
export interface AgentRunSpec {
  client: SupervisorClient;
  claudePath: string;
  options: AgentOptions;
  /** The whole environment of the agent process (sandbox env, gateway URL and token, its home). */
  env: Record<string, string>;
  /** The SDK session to continue (hybrid wake, or after a server restart). */
  resume: string | null;
  /** Resume `resume` as a new conversation of its own (the SDK's `forkSession`). */
  fork?: boolean;
  /** The real API key: removed from anything passed to the sandbox, should it ever appear. */
  secret: string | undefined;
  /** Confines the process (Landlock) to changing files beneath these paths only. */
  writable?: string[];
  /** Asks the client before a tool runs (permission modes other than `bypassPermissions`). */
  canUseTool?: CanUseTool;
  /** `PreToolUse` hooks, answered by the client through the same channel. */
  preToolUse?: HookCallbackMatcher[];
  log: Logger;
}

/** The SDK options for a `claude` process in a sandbox, cold or prewarmed. */
function sdkOptions(spec: AgentRunSpec): Options {
  const o = spec.options;
  return {
    cwd: o.cwd,
    maxTurns: o.maxTurns,
    ...(o.maxBudgetUsd !== null ? { maxBudgetUsd: o.maxBudgetUsd } : {}),
    ...(o.model ? { model: o.model } : {}),
    ...(o.systemPrompt !== undefined
      ? { systemPrompt: o.systemPrompt }
      : o.appendSystemPrompt !== undefined
        ? { systemPrompt: { type: "preset", preset: "claude_code", append: o.appendSystemPrompt } }
        : {}),
    ...(o.allowedTools ? { allowedTools: o.allowedTools } : {}),
    ...(o.disallowedTools ? { disallowedTools: o.disallowedTools } : {}),
    permissionMode: (o.permissionMode ?? "bypassPermissions") as Options["permissionMode"],
    allowDangerouslySkipPermissions: (o.permissionMode ?? "bypassPermissions") === "bypassPermissions",
    ...(o.mcpServers ? { mcpServers: o.mcpServers as Options["mcpServers"] } : {}),
    ...(spec.resume ? { resume: spec.resume, ...(spec.fork ? { forkSession: true } : {}) } : {}),
    ...(o.outputFormat ? { outputFormat: o.outputFormat } : {}),
    ...(o.settingSources ? { settingSources: o.settingSources } : {}),
    ...(o.agents ? { agents: o.agents } : {}),
    ...(o.skills ? { skills: o.skills } : {}),
    ...(o.includePartialMessages ? { includePartialMessages: true } : {}),
    ...(spec.canUseTool ? { canUseTool: spec.canUseTool } : {}),
    ...(spec.preToolUse?.length ? { hooks: { PreToolUse: spec.preToolUse } } : {}),
    // The SDK would otherwise hand the host's environment to the process.
    env: spec.env,
    pathToClaudeCodeExecutable: spec.claudePath,
    spawnClaudeCodeProcess: (p) => {
      const env: Record<string, string> = { ...pick(spec.env, SANDBOX_PATHS) };
      for (const [k, v] of Object.entries(p.env))
        if (v !== undefined && !HOST_ONLY.test(k) && (!spec.secret || !v.includes(spec.secret))) env[k] = v;
      return new SandboxProcess(spec.client, {
        cmd: [spec.claudePath, ...p.args],
        cwd: p.cwd ?? o.cwd,
        env,
        ...(spec.writable ? { writable: spec.writable } : {}),
        log: spec.log,
      });
    },
  };
}

/**
 * A `claude` process started ahead of its session (the SDK's `prewarm()`): loaded, configured
 * and parked in `spec.options.cwd` in a sandbox, waiting for a session to claim it. Everything
 * but the working directory, model and permission mode is fixed now.
 */
export class ParkedAgent {
  private constructor(readonly spare: SpareProcess) {}

  static async start(spec: AgentRunSpec, timeoutMs: number): Promise<ParkedAgent> {
    const options = sdkOptions(spec);
    return new ParkedAgent(await prewarm({ options, initializeTimeoutMs: timeoutMs }));
  }

  /** Settles when the process exits (a parked one that dies is replaced). */
  get exited(): Promise<void> {
    return this.spare.exited;
  }

  /** Discards the process. */
  close(): void {
    this.spare.close();
  }
}

/**
 * One live Claude Agent SDK conversation: the SDK's `query()` in this server, in streaming-input
 * mode, with its `claude` process inside the sandbox (started now, or a parked one claimed).
 * Messages are handed out in order; `end()` stops the process.
 */
export class AgentRun {
  private readonly turns = new TurnQueue();
  private readonly q: Query;
  /** A claimed parked process: settles once it took the session (rejects if it refused). */
  readonly claimed: Promise<void>;
  private ended = false;

  constructor(spec: AgentRunSpec, parked?: ParkedAgent) {
    if (!parked) {
      this.q = query({ prompt: this.turns, options: sdkOptions(spec) });
      this.claimed = Promise.resolve();
      return;
    }
    const o = spec.options;
    this.q = parked.spare.claim({
      prompt: this.turns,
      options: {
        cwd: o.cwd,
        ...(o.model ? { model: o.model } : {}),
        permissionMode: (o.permissionMode ?? "bypassPermissions") as PermissionMode,
      },
    });
    // `option_not_applied` (model refused) means the session runs anyway; anything else: it never ran.
    this.claimed = parked.spare.claimed.then(
      () => {},
      (err: Error) => {
        if (!err.message.startsWith("option_not_applied")) throw err;
        spec.log.warn({ err: err.message }, "a parked agent took its session without an option");
      },
    );
  }

  /** The next user turn. */
  send(text: string): void {
    this.turns.push(text);
  }

  /** Stops the current turn (the conversation goes on). */
  async interrupt(): Promise<void> {
    await this.q.interrupt();
  }

  /** Every SDK message in order, until the process ends (none if a parked process refused the claim). */
  async *messages(): AsyncIterable<SDKMessage> {
    await this.claimed;
    yield* this.q;
  }

  /** Ends the conversation and its process. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.turns.close();
    this.q.close();
  }
}
