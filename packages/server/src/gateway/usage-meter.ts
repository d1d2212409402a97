import type { MeteredUsage } from "./prices.js";

type UsageFields = {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_creation?: { ephemeral_1h_input_tokens?: number };
  server_tool_use?: { web_search_requests?: number };
};

/** What a relayed answer cost in tokens, as far as the gateway saw it. */
export interface MeterReading {
  usage: MeteredUsage;
  /** The model the answer named ("" when it was no message: an error, or cut before it started). */
  model: string;
  /** False when a stream ended before its final usage (cut): its output is an upper bound. */
  complete: boolean;
}

const NUMBER = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);

/**
 * Reads usage from a streamed (SSE) or whole JSON Messages API answer as it passes. A stream cut
 * before its `message_delta` is charged one output token per byte of content it delivered (no
 * token is shorter than a byte), so cutting a stream never makes output free.
 */
export class UsageMeter {
  private readonly sse: boolean;
  private text = "";
  private readonly usage: MeteredUsage = {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
    cacheCreation1hTokens: 0,
    webSearchRequests: 0,
  };
  private model = "";
  private finalOutput: number | null = null;
  private deliveredBytes = 0;

  constructor(contentType: string) {
    this.sse = contentType.includes("text/event-stream");
  }

  feed(chunk: Buffer): void {
    this.text += chunk.toString("utf8");
    if (!this.sse) return;
    let nl = this.text.indexOf("\n");
    while (nl >= 0) {
      const line = this.text.slice(0, nl).trim();
      this.text = this.text.slice(nl + 1);
      if (line.startsWith("data:")) this.event(line.slice(5).trim());
      nl = this.text.indexOf("\n");
    }
  }

  finish(): MeterReading {
    if (!this.sse && this.text) {
      try {
        const m = JSON.parse(this.text) as { type?: string; model?: string; usage?: UsageFields };
        if (m.type === "message" && m.model && m.usage) {
          this.model = m.model;
          this.take(m.usage);
          this.finalOutput = NUMBER(m.usage.output_tokens);
        }
      } catch {
        // Not a message: nothing to meter.
      }
    }
    const complete = this.finalOutput !== null;
    this.usage.outputTokens = complete
      ? (this.finalOutput as number)
      : Math.max(this.usage.outputTokens, this.deliveredBytes);
    return { usage: this.usage, model: this.model, complete };
  }

  private event(data: string): void {
    let e: {
      type?: string;
      message?: { model?: string; usage?: UsageFields };
      usage?: UsageFields;
      delta?: Record<string, unknown>;
    };
    try {
      e = JSON.parse(data);
    } catch {
      return;
    }
    if (e.type === "message_start" && e.message) {
      this.model = e.message.model ?? this.model;
      this.take(e.message.usage ?? {});
      this.usage.outputTokens = NUMBER(e.message.usage?.output_tokens);
    } else if (e.type === "content_block_delta" && e.delta) {
      for (const k of ["text", "partial_json", "thinking", "signature", "citation"])
        if (typeof e.delta[k] === "string") this.deliveredBytes += Buffer.byteLength(e.delta[k] as string);
    } else if (e.type === "message_delta" && e.usage) {
      // message_delta's counts are cumulative: the final figures for the whole answer.
      this.take(e.usage);
      this.finalOutput = NUMBER(e.usage.output_tokens);
    }
  }

  /** Takes the counts a usage object carries (each one present replaces the one before). */
  private take(u: UsageFields): void {
    if (u.input_tokens !== undefined) this.usage.inputTokens = NUMBER(u.input_tokens);
    if (u.cache_read_input_tokens !== undefined)
      this.usage.cacheReadTokens = NUMBER(u.cache_read_input_tokens);
    if (u.cache_creation_input_tokens !== undefined)
      this.usage.cacheCreationTokens = NUMBER(u.cache_creation_input_tokens);
    if (u.cache_creation?.ephemeral_1h_input_tokens !== undefined)
      this.usage.cacheCreation1hTokens = NUMBER(u.cache_creation.ephemeral_1h_input_tokens);
    if (u.server_tool_use?.web_search_requests !== undefined)
      this.usage.webSearchRequests = NUMBER(u.server_tool_use.web_search_requests);
  }
}
