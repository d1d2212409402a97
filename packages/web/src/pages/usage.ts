import { api } from "../api.js";
import { barChart, fill, h, usd } from "../ui.js";
import type { UsageList } from "../wire.js";

/** Usage: agent sessions' cost per day (tokens and compute), as a chart and a table. */
export function usagePage(root: HTMLElement): void {
  const chart = h("div", { "data-test": "usage-chart" });
  const body = h("tbody");
  const error = h("div", { class: "error" });
  fill(
    root,
    h("h1", {}, "Usage"),
    h(
      "p",
      { class: "muted" },
      "Cost of agent sessions per day: model tokens (through the gateway) plus sandbox compute.",
    ),
    chart,
    error,
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["day", "tokens", "compute", "total", "input tokens", "output tokens"].map((c) =>
            h("th", {}, c),
          ),
        ),
      ),
      body,
    ),
  );
  void api<UsageList>("GET", "/v1/usage?groupBy=day")
    .then((r) => {
      const rows = [...r.items].sort((a, b) => a.key.localeCompare(b.key));
      fill(chart, barChart(rows.map((x) => ({ label: x.key, value: x.totalUsd }))));
      fill(
        body,
        ...rows.map((x) =>
          h(
            "tr",
            { "data-day": x.key },
            h("td", {}, x.key),
            h("td", {}, usd(x.tokensUsd)),
            h("td", {}, usd(x.computeUsd)),
            h("td", { "data-test": "total" }, usd(x.totalUsd)),
            h("td", {}, x.inputTokens),
            h("td", {}, x.outputTokens),
          ),
        ),
      );
    })
    .catch((e) => (error.textContent = String(e.message)));
}
