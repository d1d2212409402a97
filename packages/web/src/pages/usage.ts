import { api } from "../api.js";
import { costChart } from "../charts.js";
import { fill, h, loading, usd } from "../ui.js";
import type { UsageList } from "../wire.js";

type Row = UsageList["items"][number];

/** Usage: agent sessions' cost, tokens vs compute, per day, per tenant and per session. */
export function usagePage(root: HTMLElement, signal: AbortSignal): void {
  const error = h("div", { class: "error" });
  const byDay = h("section", { "data-test": "usage-by-day" }, loading());
  const byTenant = h("section", { "data-test": "usage-by-tenant" });
  const bySession = h("section", { "data-test": "usage-by-session" });
  const body = h("tbody");
  fill(
    root,
    h("h1", {}, "Usage"),
    h(
      "p",
      { class: "muted" },
      "Cost of agent sessions: model tokens (through the gateway) and sandbox compute, in USD.",
    ),
    error,
    h("h2", {}, "Per day"),
    byDay,
    h(
      "div",
      { class: "scroll-x" },
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
    ),
    h("h2", {}, "Per tenant"),
    byTenant,
    h("h2", {}, "Per session"),
    bySession,
  );
  const get = (groupBy: string) =>
    api<UsageList>("GET", `/v1/usage?groupBy=${groupBy}`).then((r) =>
      [...r.items].sort((a, b) => a.key.localeCompare(b.key)),
    );
  const empty = () =>
    h("p", { class: "muted", "data-test": "empty" }, "No usage yet: start an agent session.");
  const draw = (into: HTMLElement, rows: Row[], title: string, horizontal: boolean) =>
    fill(
      into,
      rows.length === 0
        ? empty()
        : costChart(
            rows.map((x) => ({ label: x.key, tokensUsd: x.tokensUsd, computeUsd: x.computeUsd })),
            { title, horizontal, signal },
          ),
    );
  void Promise.all([get("day"), get("tenant"), get("session")])
    .then(([days, tenants, sessions]) => {
      if (signal.aborted) return;
      draw(byDay, days, "Cost per day: tokens and compute", false);
      draw(byTenant, tenants, "Cost per tenant: tokens and compute", true);
      // The 30 costliest sessions: more bars than that are unreadable.
      const top = [...sessions].sort((a, b) => b.totalUsd - a.totalUsd).slice(0, 30);
      draw(bySession, top, "Cost per session: tokens and compute", true);
      fill(
        body,
        ...days.map((x) =>
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
    .catch((e) => {
      fill(byDay);
      error.textContent = String(e.message);
    });
}
