import type { PriceTable } from "./prices.js";

/** The largest request body the gateway reads (the Messages API's own limit). */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** The most tokens an image costs (the API scales images down to about 1.15 megapixels first). */
const IMAGE_TOKENS = 1_600;
/** Below this many output tokens a clamped request is not worth sending: it is refused instead. */
const MIN_OUTPUT_TOKENS = 256;
/** Extended thinking's smallest budget (the API refuses less). */
const MIN_THINKING_TOKENS = 1_024;

/** A `POST /v1/messages` body as the gateway needs to see it. */
export interface ModelRequest {
  model: string;
  maxTokens: number;
  /** It asks for 1-hour cache writes (the dearest input token: 2 x input). */
  longCache: boolean;
  body: Record<string, unknown>;
}

/** Parses a Messages API body; a string says what is wrong with it. */
export function parseModelRequest(raw: Buffer): ModelRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    return "the request body is not JSON";
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return "the request body is not an object";
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0 || b.model.length > 256)
    return "model: a model name is required";
  if (!Number.isInteger(b.max_tokens) || (b.max_tokens as number) < 1)
    return "max_tokens: a positive integer is required";
  const longCache = /"ttl"\s*:\s*"1h"/.test(raw.toString("utf8"));
  return { model: b.model, maxTokens: b.max_tokens as number, longCache, body: b };
}

/**
 * The most input tokens a request can count, without asking the model: no token is shorter than
 * a byte, so the body's length bounds every text in it; base64 images count as the most an image
 * costs instead of their bytes.
 */
export function inputTokenBound(raw: Buffer, req: ModelRequest): number {
  let bound = raw.length;
  visitImages(req.body.messages, (data) => {
    bound -= data.length;
    bound += IMAGE_TOKENS;
  });
  return Math.max(0, bound);
}

function visitImages(node: unknown, onImage: (base64: string) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) visitImages(n, onImage);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const n = node as Record<string, unknown>;
  const source = n.source as Record<string, unknown> | undefined;
  if (n.type === "image" && source?.type === "base64" && typeof source.data === "string") {
    onImage(source.data);
    return;
  }
  for (const v of Object.values(n)) if (typeof v === "object") visitImages(v, onImage);
}

/** The most a request can cost in USD: every input token at its dearest, and all of `max_tokens`. */
export function worstCaseUsd(prices: PriceTable, req: ModelRequest, inputTokens: number): number {
  const p = prices.priceOf(req.model);
  return (inputTokens * prices.dearestInput(req.model, req.longCache) + req.maxTokens * p.output) / 1_000_000;
}

/**
 * Lowers `max_tokens` (and a thinking budget with it) so the request's worst case fits in
 * `availableUsd`. Returns the new body's fields, or null when less than a useful answer fits.
 */
export function clampToBudget(
  prices: PriceTable,
  req: ModelRequest,
  inputTokens: number,
  availableUsd: number,
): ModelRequest | null {
  const p = prices.priceOf(req.model);
  const forOutput = availableUsd * 1_000_000 - inputTokens * prices.dearestInput(req.model, req.longCache);
  const maxTokens = Math.min(req.maxTokens, Math.floor(forOutput / p.output));
  if (maxTokens < MIN_OUTPUT_TOKENS) return null;
  const body: Record<string, unknown> = { ...req.body, max_tokens: maxTokens };
  const thinking = req.body.thinking as { type?: string; budget_tokens?: number } | undefined;
  if (
    thinking?.type === "enabled" &&
    typeof thinking.budget_tokens === "number" &&
    thinking.budget_tokens >= maxTokens
  ) {
    if (maxTokens - 1 < MIN_THINKING_TOKENS) return null;
    body.thinking = { ...thinking, budget_tokens: maxTokens - 1 };
  }
  return { ...req, maxTokens, body };
}
