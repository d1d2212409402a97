// Small timing helpers shared by the benchmarks.
import { performance } from "node:perf_hooks";

/** Runs `fn` `n` times (after `warmup` untimed runs) and returns the durations in ms. */
export async function timeMany(n, fn, warmup = 2) {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** The q-quantile (0..1) of a list of numbers, nearest-rank. */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** `{p50, p99, n}` of a list of durations. */
export function summary(xs) {
  return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), n: xs.length };
}
