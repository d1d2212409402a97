/**
 * The usage charts, drawn by Chart.js (bundled from npm by the web build). Only the parts a bar
 * chart needs are registered, so the rest of the library stays out of the bundle.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { h } from "./ui.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** One bar of a usage chart: its label and its two stacked parts in USD. */
export interface CostBar {
  label: string;
  tokensUsd: number;
  computeUsd: number;
}

const TOKENS = "#2563eb";
const COMPUTE = "#f59e0b";

/**
 * A stacked bar chart of tokens vs compute per label, with axes in USD; horizontal bars when the
 * labels are long ids (tenants, sessions), so they stay readable at phone width. The chart is
 * destroyed when `signal` aborts (the page is left).
 */
export function costChart(
  bars: CostBar[],
  o: { title: string; horizontal?: boolean; signal: AbortSignal },
): HTMLElement {
  const canvas = h("canvas", { role: "img", "aria-label": o.title });
  const box = h("div", { class: "chart", "data-test": "chart", "data-bars": String(bars.length) }, canvas);
  if (o.horizontal) box.style.height = `${Math.max(160, 28 * bars.length + 80)}px`;
  const value = o.horizontal ? "x" : "y";
  const category = o.horizontal ? "y" : "x";
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: bars.map((b) => b.label),
      datasets: [
        { label: "tokens", data: bars.map((b) => b.tokensUsd), backgroundColor: TOKENS },
        { label: "compute", data: bars.map((b) => b.computeUsd), backgroundColor: COMPUTE },
      ],
    },
    options: {
      indexAxis: o.horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        title: { display: false },
        legend: { position: "bottom" },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${dollars(Number(c.raw))}` } },
      },
      scales: {
        // Every id of a horizontal chart is shown (its height grows with the bars); days may skip.
        [category]: { stacked: true, ticks: { autoSkip: !o.horizontal, maxRotation: 0 } },
        [value]: {
          stacked: true,
          beginAtZero: true,
          title: { display: true, text: "USD" },
          ticks: { callback: (v) => dollars(Number(v)) },
        },
      },
    },
  });
  o.signal.addEventListener("abort", () => chart.destroy(), { once: true });
  return box;
}

/** An axis or tooltip amount: cents for dollars, two significant digits below a cent. */
function dollars(v: number): string {
  if (v === 0) return "$0";
  return Math.abs(v) < 0.01 ? `$${Number(v.toPrecision(2))}` : `$${v.toFixed(2)}`;
}
