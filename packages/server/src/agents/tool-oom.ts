import type { SDKMessage } from "@anthropic-ai/claude-agent-sdk";
import type { Runtime, ToolOomData } from "@berth/core";

/** The content blocks of an SDK message's API message, whatever their kind. */
function blocks(m: SDKMessage): Array<Record<string, unknown>> {
  if (m.type !== "assistant" && m.type !== "user") return [];
  const content = (m.message as { content?: unknown }).content;
  return Array.isArray(content) ? (content as Array<Record<string, unknown>>) : [];
}

/**
 * Watches a live run's sandbox for OOM kills during its turns. The kernel's counter says only
 * that something was killed, not what: a rise seen when a tool's result comes back is put on
 * that tool (the agent, still talking, was not the victim); one seen only at the turn's end is
 * reported without a tool. Each kill is reported once.
 */
export class ToolOomWatch {
  /** Tool calls of the agent not yet answered: id -> tool name. */
  private readonly calls = new Map<string, string>();

  /** `seen`: the sandbox's OOM kill count when the run started (undefined: not known yet). */
  constructor(
    private readonly runtime: Runtime,
    private readonly sandboxId: string,
    private seen: number | undefined,
  ) {}

  /** The sandbox's OOM kill count as last seen (what a later agent exit is compared with). */
  get oomKills(): number | undefined {
    return this.seen;
  }

  /** The `tool_oom` event this message brings to light, if the sandbox's counter rose. */
  async check(m: SDKMessage): Promise<ToolOomData | null> {
    for (const b of blocks(m))
      if (b.type === "tool_use" && typeof b.id === "string") this.calls.set(b.id, String(b.name ?? ""));
    const results = blocks(m).filter((b) => b.type === "tool_result");
    if (results.length === 0 && m.type !== "result") return null;
    // Of several results at once, a failed one is the likelier victim.
    const victim = results.find((b) => b.is_error === true) ?? results[0];
    const toolUseId = typeof victim?.tool_use_id === "string" ? victim.tool_use_id : undefined;
    const tool = toolUseId !== undefined ? this.calls.get(toolUseId) : undefined;
    for (const b of results) this.calls.delete(b.tool_use_id as string);
    const now = (await this.runtime.inspect(this.sandboxId).catch(() => undefined))?.oomKills;
    if (now === undefined) return null;
    const before = this.seen;
    this.seen = now;
    if (before === undefined || now <= before) return null;
    return {
      kills: now - before,
      ...(tool ? { tool } : {}),
      ...(toolUseId !== undefined && tool ? { toolUseId } : {}),
    };
  }
}
