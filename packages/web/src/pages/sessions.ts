import { api, events } from "../api.js";
import { age, fill, h, loading, loadingRow, usd } from "../ui.js";
import type { ListOf, SessionView } from "../wire.js";

/** Agent sessions: the list, and a form to start one. */
export function sessionsPage(root: HTMLElement): void {
  const error = h("div", { class: "error" });
  const prompt = h("textarea", {
    rows: "3",
    cols: "70",
    name: "prompt",
    placeholder: "What should the agent do?",
  });
  const pattern = h(
    "select",
    { name: "pattern" },
    ...["ephemeral", "long-running", "hybrid"].map((p) => h("option", { value: p }, p)),
  );
  const list = h("tbody", {}, loadingRow(5));
  fill(
    root,
    h("h1", {}, "Agent sessions"),
    h(
      "div",
      { class: "card" },
      prompt,
      h(
        "div",
        { class: "row" },
        pattern,
        h("button", { class: "primary", "data-test": "start-session", onclick: start }, "Start"),
      ),
    ),
    error,
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...["id", "state", "pattern", "sandbox", "age"].map((c) => h("th", {}, c)))),
      list,
    ),
  );
  async function start() {
    try {
      const s = await api<SessionView>("POST", "/v1/sessions", {
        prompt: prompt.value,
        pattern: pattern.value,
        sandbox: { network: { egress: "none" } },
      });
      location.hash = `#/sessions/${s.id}`;
    } catch (e) {
      error.textContent = String((e as Error).message);
    }
  }
  void api<ListOf<SessionView>>("GET", "/v1/sessions")
    .then((r) =>
      r.items.length === 0
        ? fill(
            list,
            h(
              "tr",
              {},
              h(
                "td",
                { colspan: "5", class: "muted", "data-test": "empty" },
                "No agent sessions yet. Start one above, or without a model key: npx berth agent run --demo 'hello'",
              ),
            ),
          )
        : fill(
            list,
            ...r.items.map((s) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#/sessions/${s.id}` }, s.id)),
                h("td", {}, s.state),
                h("td", {}, s.pattern),
                h("td", {}, h("a", { href: `#/sandboxes/${s.sandboxId}` }, s.sandboxId)),
                h("td", {}, age(s.createdAt)),
              ),
            ),
          ),
    )
    .catch((e) => (error.textContent = String(e.message)));
}

/** States after which a session takes no more messages. */
const ENDED = ["completed", "failed", "cancelled"];

/** One session: its live transcript, the next message, interrupt, usage and cost. */
export function sessionPage(root: HTMLElement, id: string, signal: AbortSignal): void {
  const error = h("div", { class: "error" });
  const facts = h("div", { class: "row" }, loading());
  const transcript = h("div", { class: "transcript", "data-test": "transcript" });
  const text = h("input", { size: "70", name: "message", placeholder: "Next message" });
  // A form, so Enter sends; an ended session takes no more messages, so it has none.
  const composer = h(
    "form",
    {
      class: "row",
      "data-test": "composer",
      onsubmit: (e: Event) => {
        e.preventDefault();
        void send();
      },
    },
    text,
    h("button", { class: "primary", type: "submit" }, "Send"),
    h("button", { type: "button", onclick: interrupt }, "Interrupt"),
  );
  const ended = h(
    "p",
    { class: "muted", "data-test": "session-ended", hidden: true },
    "This session has ended: it takes no more messages. Start a new one from the sessions page.",
  );
  fill(root, h("h1", {}, `Session ${id}`), facts, transcript, composer, ended, error);
  async function send() {
    try {
      await api("POST", `/v1/sessions/${id}/messages`, { text: text.value });
      text.value = "";
    } catch (e) {
      error.textContent = String((e as Error).message);
    }
  }
  async function interrupt() {
    await api("POST", `/v1/sessions/${id}/interrupt`).catch((e) => (error.textContent = String(e.message)));
  }
  async function refresh() {
    const s = await api<SessionView>("GET", `/v1/sessions/${id}`);
    const over = ENDED.includes(s.state);
    composer.hidden = over;
    ended.hidden = !over;
    fill(
      facts,
      h("span", { "data-test": "session-state" }, s.state),
      h(
        "span",
        { class: "muted" },
        `${s.pattern} · sandbox ${s.sandboxId} · ${s.turns ?? 0} turns · ${s.usage?.inputTokens ?? 0} in / ${s.usage?.outputTokens ?? 0} out tokens · cost ${usd(s.cost?.totalUsd)} (tokens ${usd(s.cost?.tokensUsd)} + compute ${usd(s.cost?.computeUsd)})`,
      ),
      // Why it failed (or its last turn did): the code a program acts on, the status, the message.
      s.failure
        ? h(
            "span",
            { class: "error", "data-test": "session-failure" },
            `failed: ${s.failure.code}${s.failure.upstreamStatus !== undefined ? ` (${s.failure.upstreamStatus})` : ""}: ${s.failure.message}`,
          )
        : null,
    );
  }
  const show = (m: any) => {
    if (m.type === "assistant") {
      for (const b of m.message?.content ?? []) {
        if (b.type === "text") transcript.append(h("div", { class: "msg assistant" }, b.text));
        if (b.type === "tool_use")
          transcript.append(h("div", { class: "msg tool" }, `${b.name} ${JSON.stringify(b.input)}`));
      }
    } else if (m.type === "user") {
      const c = m.message?.content;
      if (typeof c === "string") transcript.append(h("div", { class: "msg user" }, c));
      else
        for (const b of c ?? [])
          if (b.type === "tool_result")
            transcript.append(
              h(
                "div",
                { class: "msg tool" },
                `→ ${typeof b.content === "string" ? b.content : JSON.stringify(b.content)}`.slice(0, 2000),
              ),
            );
          else if (b.type === "text") transcript.append(h("div", { class: "msg user" }, b.text));
    } else if (m.type === "system" && m.subtype === "api_retry") {
      transcript.append(
        h(
          "div",
          { class: "msg tool" },
          `the model API ${m.error_status ? `answered ${m.error_status}` : "did not answer"}; retry ${m.attempt}/${m.max_retries}`,
        ),
      );
    } else if (m.type === "result") {
      transcript.append(
        h(
          "div",
          { class: "msg result", "data-test": "result" },
          // The SDK says `success` for a turn an API error ended: shown as the error it is.
          `result: ${m.is_error && m.subtype === "success" ? "error" : m.subtype}${m.result ? ` · ${m.result}` : ""}`,
        ),
      );
    }
    transcript.scrollTop = transcript.scrollHeight;
  };
  /** Open permission requests by id: their Allow/Deny controls, settled when answered or resolved. */
  const asks = new Map<string, HTMLElement>();
  const ask = (p: { id: string; tool: string; input: unknown; expiresAt: string }) => {
    const status = h(
      "span",
      { class: "muted" },
      `waiting for an answer (until ${p.expiresAt.slice(11, 19)} UTC)`,
    );
    const answer = (behavior: "allow" | "deny") => async () => {
      try {
        await api("POST", `/v1/sessions/${id}/permissions/${encodeURIComponent(p.id)}`, {
          behavior,
          ...(behavior === "deny" ? { message: "denied from the dashboard" } : {}),
        });
      } catch (e) {
        status.textContent = `could not answer: ${(e as Error).message}`;
      }
    };
    const controls = h(
      "span",
      { class: "row" },
      h("button", { class: "primary", "data-test": "permission-allow", onclick: answer("allow") }, "Allow"),
      h("button", { "data-test": "permission-deny", onclick: answer("deny") }, "Deny"),
    );
    const box = h(
      "div",
      { class: "msg permission", "data-test": "permission-request", "data-request": p.id },
      h("strong", {}, `${p.tool} asks to run: `),
      h("code", {}, JSON.stringify(p.input).slice(0, 2000)),
      controls,
      status,
    );
    asks.set(p.id, box);
    transcript.append(box);
  };
  const resolved = (r: { id: string; behavior: string; by: string; message?: string }) => {
    const box = asks.get(r.id);
    if (!box) return;
    box.querySelector(".row")?.remove();
    const status = box.querySelector(".muted");
    if (status)
      status.textContent = `${r.behavior === "allow" ? "allowed" : "denied"} (${r.by === "client" ? "answered" : r.by === "timeout" ? "no answer in time" : "session ended"})${r.message ? `: ${r.message}` : ""}`;
    box.setAttribute("data-resolved", r.behavior);
  };
  void events(
    `/v1/sessions/${id}/events`,
    (e) => {
      if (e.event === "message") show(e.data);
      else if (e.event === "user_message")
        transcript.append(h("div", { class: "msg user", "data-test": "user-message" }, e.data.text));
      else if (e.event === "permission_request") ask(e.data);
      else if (e.event === "permission_resolved") resolved(e.data);
      else if (e.event === "state") {
        if (e.data.state === "failed" && e.data.failure)
          transcript.append(
            h(
              "div",
              { class: "msg result error", "data-test": "failure-reason" },
              `failed: ${e.data.failure.code}: ${e.data.failure.message}`,
            ),
          );
        void refresh();
      }
      transcript.scrollTop = transcript.scrollHeight;
    },
    signal,
  ).catch(() => {});
  void refresh().catch((e) => (error.textContent = String(e.message)));
  const timer = setInterval(() => void refresh().catch(() => {}), 3000);
  signal.addEventListener("abort", () => clearInterval(timer));
}
