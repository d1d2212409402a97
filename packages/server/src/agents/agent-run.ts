import {
  type Options,
  type Query,
  query,
  type SDKMessage,
  type SDKUserMessage,
} from "@anthropic-ai/claude-agent-sdk";
import type { AgentOptions, Logger } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { SandboxProcess } from "./sandbox-process.js";

/** Env var names whose values a sandbox must never get from the host. */
const HOST_ONLY = /^BERTH_/;

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
  /** The whole environment of the agent process (sandbox env, gateway URL and token, config dir). */
  env: Record<string, string>;
  /** The SDK session to continue (hybrid wake, or after a server restart). */
  resume: string | null;
  /** The real API key: removed from anything passed to the sandbox, should it ever appear. */
  secret: string | undefined;
  log: Logger;
}

/**
 * One live Claude Agent SDK conversation: the SDK's `query()` in this server, in streaming-input
 * mode, with its `claude` process inside the sandbox. Messages are handed to `onMessage` in
 * order; `end()` stops the process.
 */
export class AgentRun {
  private readonly turns = new TurnQueue();
  private readonly abort = new AbortController();
  private readonly q: Query;
  private ended = false;

  constructor(spec: AgentRunSpec) {
    const o = spec.options;
    const options: Options = {
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
      ...(spec.resume ? { resume: spec.resume } : {}),
      // The SDK would otherwise hand the host's environment to the process.
      env: spec.env,
      pathToClaudeCodeExecutable: spec.claudePath,
      abortController: this.abort,
      spawnClaudeCodeProcess: (p) => {
        const env: Record<string, string> = {};
        for (const [k, v] of Object.entries(p.env))
          if (v !== undefined && !HOST_ONLY.test(k) && (!spec.secret || !v.includes(spec.secret))) env[k] = v;
        return new SandboxProcess(spec.client, {
          cmd: [spec.claudePath, ...p.args],
          cwd: o.cwd,
          env,
          log: spec.log,
        });
      },
    };
    this.q = query({ prompt: this.turns, options });
  }

  /** The next user turn. */
  send(text: string): void {
    this.turns.push(text);
  }

  /** Stops the current turn (the conversation goes on). */
  async interrupt(): Promise<void> {
    await this.q.interrupt();
  }

  /** Every SDK message in order, until the process ends. */
  messages(): AsyncIterable<SDKMessage> {
    return this.q;
  }

  /** Ends the conversation and its process. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.turns.close();
    this.q.close();
  }
}
