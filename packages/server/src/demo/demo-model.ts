/**
 * Berth's DEMO model: a scripted stand-in that speaks the Messages API so a newcomer without a
 * model key can watch a whole agent session (a tool call in the sandbox, its result, an answer).
 * It is never mistaken for Claude: its name is `berth-demo`, every reply starts with
 * DEMO_PREFIX and says that it is scripted, and it costs nothing (zero usage).
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";

/** The model name that selects the demo model (`berth agent run --demo`, or `agent.model`). */
export const DEMO_MODEL = "berth-demo";

/** How every demo reply starts, so no reader takes it for a real model's words. */
export const DEMO_PREFIX = "[berth-demo: a scripted demo model, not Claude]";

/** The command the demo runs in the sandbox: harmless, and it shows where it ran. */
export const DEMO_COMMAND = 'echo "hello from $(hostname) as uid $(id -u)"; ls -A /workspace | head -20';

/** Characters of the tool's output quoted back in the final answer. */
const QUOTED_OUTPUT_CHARS = 600;

type Block = { type: string; text?: string; content?: unknown; name?: string };
type Message = { role?: string; content?: string | Block[] };

/** Whether a Messages API request body (JSON text) asks for the demo model. */
export function isDemoRequest(raw: Buffer): boolean {
  try {
    return (JSON.parse(raw.toString("utf8")) as { model?: unknown }).model === DEMO_MODEL;
  } catch {
    return false;
  }
}

/** One demo answer: its content blocks and why it stops. */
interface DemoTurn {
  content: ({ type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: object })[];
  stop: "end_turn" | "tool_use";
}

/**
 * The script: to a new prompt it answers with one Bash tool call (when the agent offers the
 * Bash tool); to that call's result it answers with the output and how to use a real model.
 */
export function demoTurn(body: { messages?: Message[]; tools?: { name?: string }[] }): DemoTurn {
  const last = body.messages?.at(-1);
  const blocks = Array.isArray(last?.content) ? last.content : [];
  const result = blocks.find((b) => b.type === "tool_result");
  if (result) {
    const output = resultText(result.content);
    const cut = output.length > QUOTED_OUTPUT_CHARS ? `${output.slice(0, QUOTED_OUTPUT_CHARS)}...` : output;
    return {
      content: [
        {
          type: "text",
          text: `${DEMO_PREFIX} The command ran inside your sandbox and printed:\n${cut.trim()}\nThat was a whole agent turn: prompt, tool call, result, answer. For real answers, set BERTH_ANTHROPIC_API_KEY on the server and run without --demo.`,
        },
      ],
      stop: "end_turn",
    };
  }
  const hasBash = body.tools?.some((t) => t.name === "Bash") ?? false;
  const intro = `${DEMO_PREFIX} I do not read your prompt; I run one command in the sandbox to show a tool call.`;
  if (!hasBash) return { content: [{ type: "text", text: intro }], stop: "end_turn" };
  return {
    content: [
      { type: "text", text: intro },
      {
        type: "tool_use",
        id: `toolu_demo_${randomUUID().replace(/-/g, "")}`,
        name: "Bash",
        input: { command: DEMO_COMMAND, description: "Show where the demo runs" },
      },
    ],
    stop: "tool_use",
  };
}

function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content.map((c: Block) => (typeof c.text === "string" ? c.text : "")).join("\n");
  return "";
}

const ZERO_USAGE = { input_tokens: 0, output_tokens: 0 };

/**
 * Answers one request to the gateway with the demo model: `count_tokens`, a whole message, or
 * a stream of server-sent events in the order the real API sends them.
 */
export function answerDemo(path: string, raw: Buffer, res: ServerResponse): void {
  const body = JSON.parse(raw.toString("utf8")) as {
    stream?: boolean;
    messages?: Message[];
    tools?: { name?: string }[];
  };
  if (path === "/v1/messages/count_tokens") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 0 }));
    return;
  }
  const turn = demoTurn(body);
  const message = {
    id: `msg_demo_${randomUUID().replace(/-/g, "")}`,
    type: "message",
    role: "assistant",
    model: DEMO_MODEL,
    stop_sequence: null,
  };
  if (!body.stream) {
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ ...message, content: turn.content, stop_reason: turn.stop, usage: ZERO_USAGE }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const send = (event: string, data: object) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  send("message_start", { message: { ...message, content: [], stop_reason: null, usage: ZERO_USAGE } });
  turn.content.forEach((block, index) => {
    if (block.type === "text") {
      send("content_block_start", { index, content_block: { type: "text", text: "" } });
      send("content_block_delta", { index, delta: { type: "text_delta", text: block.text } });
    } else {
      send("content_block_start", { index, content_block: { ...block, input: {} } });
      send("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) },
      });
    }
    send("content_block_stop", { index });
  });
  send("message_delta", { delta: { stop_reason: turn.stop, stop_sequence: null }, usage: ZERO_USAGE });
  send("message_stop", {});
  res.end();
}
