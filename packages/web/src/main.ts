import { api, session } from "./api.js";
import { managedAgentsPage } from "./pages/managed-agents.js";
import { sandboxPage } from "./pages/sandbox.js";
import { sandboxesPage } from "./pages/sandboxes.js";
import { sessionPage, sessionsPage } from "./pages/sessions.js";
import { usagePage } from "./pages/usage.js";
import { fill, h } from "./ui.js";

// Hash routes: #/sandboxes, #/sandboxes/<id>, #/sessions, #/sessions/<id>, #/usage, #/managed-agents.
const app = document.getElementById("app") as HTMLElement;
let current: AbortController | null = null;

function signIn(message = ""): void {
  const key = h("input", { type: "password", size: "48", name: "key", placeholder: "berth_..." });
  const error = h("div", { class: "error" }, message);
  const go = async () => {
    session.signIn(key.value.trim());
    try {
      await api("GET", "/v1/sandboxes?limit=1");
      location.hash = "#/sandboxes";
      route();
    } catch (e) {
      session.signOut();
      error.textContent = `That key does not work: ${(e as Error).message}`;
    }
  };
  fill(
    app,
    h(
      "div",
      { class: "signin card" },
      h("h1", {}, "Sign in to Berth"),
      h("p", { class: "muted" }, "With an API key (the admin key is in the server's data dir, admin-key)."),
      h(
        "div",
        { class: "row" },
        key,
        h("button", { class: "primary", onclick: go, "data-test": "sign-in" }, "Sign in"),
      ),
      error,
    ),
  );
}

function route(): void {
  current?.abort();
  current = new AbortController();
  if (!session.key()) {
    signIn();
    return;
  }
  const [, page = "sandboxes", id] = location.hash.split("/");
  const nav = (href: string, label: string, on: boolean) => h("a", { href, class: on ? "on" : "" }, label);
  const main = h("main");
  fill(
    app,
    h(
      "header",
      {},
      h("span", { class: "brand" }, "Berth"),
      nav("#/sandboxes", "Sandboxes", page === "sandboxes"),
      nav("#/sessions", "Sessions", page === "sessions"),
      nav("#/usage", "Usage", page === "usage"),
      nav("#/managed-agents", "Managed Agents", page === "managed-agents"),
      h(
        "a",
        {
          class: "right",
          role: "button",
          tabindex: "0",
          onclick: () => {
            session.signOut();
            signIn();
          },
        },
        "Sign out",
      ),
    ),
    main,
  );
  const signal = current.signal;
  if (page === "sandboxes" && id) sandboxPage(main, id, signal);
  else if (page === "sessions" && id) sessionPage(main, id, signal);
  else if (page === "sessions") sessionsPage(main);
  else if (page === "usage") usagePage(main, signal);
  else if (page === "managed-agents") managedAgentsPage(main, signal);
  else sandboxesPage(main, signal);
}

window.addEventListener("hashchange", route);
route();
