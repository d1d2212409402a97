import { api } from "../api.js";
import { age, fill, h, loadingRow, sparkline, usd } from "../ui.js";
import type { SandboxMetrics, SandboxPage, SandboxView } from "../wire.js";

const PAGE = 50;

/** Sandboxes: paged (50 a page), filtered by state and id/label, live CPU and memory of the rows shown. */
export function sandboxesPage(root: HTMLElement, signal: AbortSignal): void {
  const cursors: (string | undefined)[] = [undefined];
  let page = 0;
  const state = h(
    "select",
    { name: "state" },
    h("option", { value: "" }, "any state"),
    ...["running", "paused", "hibernated", "failed", "deleted"].map((s) => h("option", { value: s }, s)),
  );
  const search = h("input", { name: "search", placeholder: "id prefix or label k=v" });
  const body = h("tbody", {}, loadingRow(9));
  const info = h("span", { class: "muted" });
  const go = (to: number) => {
    page = to;
    void load();
  };
  const prev = h("button", { onclick: () => page > 0 && go(page - 1) }, "‹ prev");
  const next = h("button", { onclick: () => cursors[page + 1] && go(page + 1) }, "next ›");
  const history = new Map<string, { cpu: number[]; mem: number[]; last?: number; at?: number }>();
  let polls = 0;
  const error = h("div", { class: "error" });
  const create = h(
    "button",
    {
      class: "primary",
      "data-test": "create-sandbox",
      onclick: async () => {
        try {
          const s = await api<SandboxView>("POST", "/v1/sandboxes", { network: { egress: "open" } });
          location.hash = `#/sandboxes/${s.id}`;
        } catch (e) {
          error.textContent = String((e as Error).message);
        }
      },
    },
    "New sandbox",
  );
  fill(
    root,
    h("h1", {}, "Sandboxes"),
    h(
      "div",
      { class: "row" },
      create,
      state,
      search,
      h(
        "button",
        {
          onclick: () => {
            cursors.splice(1);
            go(0);
          },
        },
        "Search",
      ),
      prev,
      next,
      info,
    ),
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
          ...["id", "state", "template", "cpus", "memory", "age", "cost", "cpu", "memory use"].map((c) =>
            h("th", {}, c),
          ),
        ),
      ),
      body,
    ),
  );

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (state.value) q.set("state", state.value);
    const term = search.value.trim();
    if (term.includes("=")) q.set("label", term);
    const cursor = cursors[page];
    if (cursor) q.set("cursor", cursor);
    // A whole id is looked up directly, whichever page it is on; a prefix filters the page shown.
    const r = /^sb[a-z0-9]{16}$/.test(term)
      ? await api<SandboxView>("GET", `/v1/sandboxes/${term}`).then(
          (s) => ({ items: [s], nextCursor: null }),
          () => ({ items: [] as SandboxView[], nextCursor: null }),
        )
      : await api<SandboxPage>("GET", `/v1/sandboxes?${q}`);
    cursors[page + 1] = r.nextCursor ?? undefined;
    const items = term && !term.includes("=") ? r.items.filter((s) => s.id.startsWith(term)) : r.items;
    info.textContent = `page ${page + 1}, ${items.length} shown${r.nextCursor ? ", more" : ""}`;
    if (items.length === 0) {
      // The last load's metrics loop stops too.
      polls++;
      const empty =
        term || state.value
          ? "No sandbox matches."
          : "No sandboxes yet. Create one with the button above, or run: npx berth sandbox create";
      fill(body, h("tr", {}, h("td", { colspan: "9", class: "muted", "data-test": "empty" }, empty)));
      return;
    }
    fill(
      body,
      ...items.map((s) =>
        h(
          "tr",
          { "data-id": s.id },
          h("td", {}, h("a", { href: `#/sandboxes/${s.id}` }, s.id)),
          h("td", { class: `state-${s.state}` }, s.state),
          h("td", {}, s.template),
          h("td", {}, s.resources.cpus),
          h("td", {}, `${s.resources.memoryMiB} MiB`),
          h("td", {}, age(s.createdAt)),
          h("td", { "data-cost": s.id }, "-"),
          h("td", { "data-cpu": s.id }),
          h("td", { "data-mem": s.id }),
        ),
      ),
    );
    const generation = ++polls;
    void poll(items.filter((s) => s.state === "running").slice(0, 20), generation);
  }

  // Live CPU and memory of the running rows on screen, every 3 s while the page is open.
  // Only the newest load's rows are polled: a search or page change ends the previous loop.
  async function poll(rows: SandboxView[], generation: number) {
    if (generation !== polls || signal.aborted) return;
    for (const s of rows) {
      try {
        const m = await api<SandboxMetrics>("GET", `/v1/sandboxes/${s.id}/metrics`);
        const hst = history.get(s.id) ?? { cpu: [], mem: [] };
        const now = performance.now();
        const cpuRate =
          hst.last === undefined || hst.at === undefined
            ? 0
            : Math.max(0, m.cpuSeconds - hst.last) / Math.max((now - hst.at) / 1000, 0.001);
        hst.last = m.cpuSeconds;
        hst.at = now;
        hst.cpu = [...hst.cpu, cpuRate].slice(-20);
        hst.mem = [...hst.mem, m.memoryBytes].slice(-20);
        history.set(s.id, hst);
        const cost = root.querySelector(`[data-cost="${s.id}"]`);
        if (cost) cost.textContent = usd(m.costUsd);
        const cpu = root.querySelector(`[data-cpu="${s.id}"]`);
        if (cpu) fill(cpu, sparkline(hst.cpu));
        const mem = root.querySelector(`[data-mem="${s.id}"]`);
        if (mem) fill(mem, sparkline(hst.mem), ` ${(m.memoryBytes / 1048576).toFixed(1)} MiB`);
      } catch {
        // a sandbox that just ended: its row is refreshed on the next load
      }
    }
    setTimeout(() => void poll(rows, generation), 3000);
  }

  void load().catch((e) => (error.textContent = String(e.message)));
}
