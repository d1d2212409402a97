import type { SessionUsage } from "@berth/core";

/** USD per million tokens of one model. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Cache reads (default: a tenth of `input`). */
  cacheRead?: number;
  /** Cache writes with the 5-minute lifetime (default: 1.25 x `input`); 1-hour writes cost 2 x `input`. */
  cacheWrite?: number;
}

/** USD per server-side web search (the Messages API's `server_tool_use.web_search_requests`). */
export const WEB_SEARCH_USD = 0.01;

/**
 * Built-in prices, USD per MTok, keyed by model id without its date suffix. They are the Claude
 * Agent SDK's own (read off its `total_cost_usd` for each model against the fake model), so
 * Berth's figure and the SDK's agree; gateway.test.ts checks a model of each family end to end.
 */
const KNOWN: Record<string, ModelPrice> = {
  "claude-opus-5-5": { input: 4, output: 20, cacheRead: 0.2 },
  "claude-opus-5": { input: 5, output: 25 },
  "claude-opus-4-8": { input: 5, output: 25 },
  "claude-opus-4-7": { input: 5, output: 25 },
  "claude-opus-4-6": { input: 5, output: 25 },
  "claude-opus-4-5": { input: 5, output: 25 },
  "claude-opus-4-1": { input: 15, output: 75 },
  "claude-opus-4": { input: 15, output: 75 },
  "claude-sonnet-5-5": { input: 2, output: 10, cacheRead: 0.1 },
  "claude-sonnet-5": { input: 2, output: 10 },
  "claude-sonnet-4-6": { input: 3, output: 15 },
  "claude-sonnet-4-5": { input: 3, output: 15 },
  "claude-sonnet-4": { input: 3, output: 15 },
  "claude-3-7-sonnet": { input: 3, output: 15 },
  "claude-3-5-sonnet": { input: 3, output: 15 },
  "claude-haiku-5-5": { input: 0.5, output: 0.5 },
  "claude-haiku-4-5": { input: 1, output: 5 },
  "claude-3-5-haiku": { input: 0.8, output: 4 },
};

/** What the SDK charges for a model it does not know (the price of its default model). */
export const DEFAULT_PRICE: ModelPrice = { input: 4, output: 20, cacheRead: 0.2 };

/** A date (`-20250929`), a version (`-v1`, `-v1:0`) or a context tag (`[1m]`) after a known id. */
const SUFFIX = /^(-\d{8})?(-v\d+(:\d+)?)?(\[\w+\])?$/;

/** Usage as the Messages API reports it, with the parts Berth's `SessionUsage` does not keep. */
export interface MeteredUsage extends SessionUsage {
  /** Of `cacheCreationTokens`, those written with the 1-hour lifetime (priced at 2 x input). */
  cacheCreation1hTokens: number;
  webSearchRequests: number;
}

/**
 * Prices per model: exact names from `BERTH_MODEL_PRICES`, then the built-in table (the longest
 * known id the name starts with, followed only by a date or version), then the default price
 * (`BERTH_MODEL_PRICE_DEFAULT`, else the SDK's), which `isKnown` reports so callers can say so.
 */
export class PriceTable {
  private readonly exact: Record<string, ModelPrice>;
  private readonly fallback: ModelPrice;

  /** `json` and `defaultJson` are BERTH_MODEL_PRICES and BERTH_MODEL_PRICE_DEFAULT; a bad one throws naming it. */
  constructor(json?: string, defaultJson?: string) {
    const table = json ? parseSetting("BERTH_MODEL_PRICES", json) : {};
    this.exact = {};
    for (const [model, price] of Object.entries(table))
      this.exact[model] = checkPrice(`BERTH_MODEL_PRICES: ${model}`, price);
    this.fallback = defaultJson
      ? checkPrice("BERTH_MODEL_PRICE_DEFAULT", parseSetting("BERTH_MODEL_PRICE_DEFAULT", defaultJson))
      : DEFAULT_PRICE;
  }

  /** True when `model` has a price of its own (not the default). */
  isKnown(model: string): boolean {
    return this.lookup(model) !== undefined;
  }

  priceOf(model: string): ModelPrice {
    return this.lookup(model) ?? this.fallback;
  }

  /** The cost of `usage` on `model` in USD, as the Agent SDK computes it. */
  costOf(model: string, u: SessionUsage & Partial<MeteredUsage>): number {
    const p = this.priceOf(model);
    const perToken = (usdPerMTok: number) => usdPerMTok / 1_000_000;
    const longWrites = Math.min(u.cacheCreation1hTokens ?? 0, u.cacheCreationTokens);
    return (
      u.inputTokens * perToken(p.input) +
      u.outputTokens * perToken(p.output) +
      u.cacheReadTokens * perToken(cacheReadPrice(p)) +
      (u.cacheCreationTokens - longWrites) * perToken(cacheWritePrice(p)) +
      longWrites * perToken(p.input * 2) +
      (u.webSearchRequests ?? 0) * WEB_SEARCH_USD
    );
  }

  /** The most one input token of `model` can cost (a cache write; 1-hour ones when `longCache`), USD per MTok. */
  dearestInput(model: string, longCache: boolean): number {
    const p = this.priceOf(model);
    return Math.max(p.input, cacheWritePrice(p), longCache ? p.input * 2 : 0);
  }

  private lookup(model: string): ModelPrice | undefined {
    const exact = this.exact[model];
    if (exact) return exact;
    let best: string | undefined;
    for (const id of Object.keys(KNOWN))
      if (model.startsWith(id) && SUFFIX.test(model.slice(id.length)) && id.length > (best?.length ?? 0))
        best = id;
    return best === undefined ? undefined : KNOWN[best];
  }
}

function parseSetting(name: string, json: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new Error(`${name} is not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new Error(`${name} must be a JSON object`);
  return v as Record<string, unknown>;
}

function checkPrice(where: string, v: unknown): ModelPrice {
  const p = v as Record<string, unknown>;
  const ok = (x: unknown, optional: boolean) =>
    (optional && x === undefined) || (typeof x === "number" && Number.isFinite(x) && x >= 0);
  if (
    typeof v !== "object" ||
    v === null ||
    !ok(p.input, false) ||
    !ok(p.output, false) ||
    !ok(p.cacheRead, true) ||
    !ok(p.cacheWrite, true)
  )
    throw new Error(
      `${where} must be {"input": n, "output": n} (USD per MTok; optional cacheRead, cacheWrite)`,
    );
  return p as unknown as ModelPrice;
}

function cacheReadPrice(p: ModelPrice): number {
  return p.cacheRead ?? p.input / 10;
}

function cacheWritePrice(p: ModelPrice): number {
  return p.cacheWrite ?? p.input * 1.25;
}

/** Usage with every count at zero. */
export function noUsage(): SessionUsage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 };
}
