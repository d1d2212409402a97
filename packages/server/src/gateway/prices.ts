import type { SessionUsage } from "@berth/core";

/** USD per million tokens of one model. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Defaults: a tenth of `input` for cache reads, 1.25 x `input` for cache writes. */
  cacheRead?: number;
  cacheWrite?: number;
}

/** Built-in prices by model family (matched as a substring of the model name), USD per MTok. */
const FAMILY_PRICES: [string, ModelPrice][] = [
  ["opus", { input: 15, output: 75 }],
  ["sonnet", { input: 3, output: 15 }],
  ["haiku", { input: 1, output: 5 }],
];
/** Unknown models are priced like the dearest family, so a budget never underestimates. */
const FALLBACK: ModelPrice = { input: 15, output: 75 };

/** Prices per model: exact names from `BERTH_MODEL_PRICES` first, then families, then the fallback. */
export class PriceTable {
  private readonly exact: Record<string, ModelPrice>;

  constructor(json?: string) {
    this.exact = json ? (JSON.parse(json) as Record<string, ModelPrice>) : {};
  }

  priceOf(model: string): ModelPrice {
    return this.exact[model] ?? FAMILY_PRICES.find(([family]) => model.includes(family))?.[1] ?? FALLBACK;
  }

  /** The cost of `usage` on `model` in USD. */
  costOf(model: string, u: SessionUsage): number {
    const p = this.priceOf(model);
    const perToken = (usdPerMTok: number) => usdPerMTok / 1_000_000;
    return (
      u.inputTokens * perToken(p.input) +
      u.outputTokens * perToken(p.output) +
      u.cacheReadTokens * perToken(p.cacheRead ?? p.input / 10) +
      u.cacheCreationTokens * perToken(p.cacheWrite ?? p.input * 1.25)
    );
  }
}

/** Usage with every count at zero. */
export function noUsage(): SessionUsage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 };
}
