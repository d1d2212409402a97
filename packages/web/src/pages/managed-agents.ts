import { api } from "../api.js";
import { age, fill, h, loading } from "../ui.js";

interface Item {
  workId: string;
  sessionId: string;
  sandboxId: string | null;
  state: string;
  startedAt: string;
  endedAt: string | null;
  failure: string | null;
}

interface Integration {
  id: string;
  environmentId: string;
  baseUrl: string;
  maxConcurrent: number;
  state: string;
  failure: string | null;
  counts: { claimed: number; running: number; completed: number; failed: number; stopped: number };
  createdAt: string;
  items?: Item[];
}

/** How often the page reads the integrations again while it is shown. */
const REFRESH_MS = 3000;

/**
 * Claude Managed Agents: each integration (a self-hosted environment Berth works for) with its
 * counts, and the latest work items of each with the sandbox they run in. Read-only: integrations
 * are added with the API or `berth managed-agents add` (the key should not pass through a browser).
 */
export function managedAgentsPage(root: HTMLElement, signal: AbortSignal): void {
  const list = h("div", { "data-test": "managed-agents" }, loading());
  const error = h("div", { class: "error" });
  fill(
    root,
    h("h1", {}, "Managed Agents"),
    h(
      "p",
      { class: "muted" },
      "Claude Managed Agents self-hosted environments: every work item runs in a sandbox of its own. Add one with `berth managed-agents add`.",
    ),
    error,
    list,
  );
  const load = async () => {
    try {
      const { items } = await api<{ items: Integration[] }>("GET", "/v1/integrations/managed-agents");
      const full = await Promise.all(
        items.map((i) => api<Integration>("GET", `/v1/integrations/managed-agents/${i.id}`)),
      );
      fill(
        list,
        ...(full.length ? full.map(integrationView) : [h("p", { class: "muted" }, "No integrations yet.")]),
      );
      error.textContent = "";
    } catch (e) {
      error.textContent = String((e as Error).message);
    }
  };
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

function integrationView(i: Integration): HTMLElement {
  const c = i.counts;
  return h(
    "section",
    { "data-integration": i.id },
    h("h2", {}, `${i.environmentId} `, h("span", { class: "muted" }, `${i.id} · ${i.state}`)),
    h(
      "p",
      {},
      `${c.running} running of at most ${i.maxConcurrent} · ${c.completed} completed · ${c.failed} failed · ${c.stopped} stopped · ${i.baseUrl}`,
    ),
    ...(i.failure ? [h("p", { class: "error" }, i.failure)] : []),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["work item", "session", "sandbox", "state", "started", "failure"].map((t) => h("th", {}, t)),
        ),
      ),
      h(
        "tbody",
        {},
        ...(i.items ?? []).map((it) =>
          h(
            "tr",
            { "data-work": it.workId },
            h("td", {}, it.workId),
            h("td", {}, it.sessionId),
            h("td", {}, it.sandboxId ? h("a", { href: `#/sandboxes/${it.sandboxId}` }, it.sandboxId) : "-"),
            h("td", {}, it.state),
            h("td", {}, age(it.startedAt)),
            h("td", {}, it.failure ?? ""),
          ),
        ),
      ),
    ),
  );
}
