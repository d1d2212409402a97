import { Terminal } from "@xterm/xterm";
import { ApiError, api, events, session } from "../api.js";
import { fill, h } from "../ui.js";

/** The rendering of the sandbox page in each root, so a new one can end the last one's live parts. */
const rendering = new WeakMap<HTMLElement, AbortController>();

/** What a person may do to a sandbox in each state (nothing that the state does not allow). */
const ACTIONS: Record<string, string[]> = {
  running: ["pause", "hibernate", "delete"],
  paused: ["resume", "delete"],
  hibernated: ["wake", "delete"],
  starting: ["delete"],
  stopped: ["delete"],
  failed: ["delete"],
};

/**
 * One sandbox: its state and the controls that state allows; when it runs, a terminal, files,
 * processes with their logs and exposed ports. A paused or hibernated sandbox is shown as it is:
 * nothing on the page resumes or wakes it until the person asks (every file or terminal call
 * would). An unknown or deleted sandbox gets a page that says so.
 */
export function sandboxPage(root: HTMLElement, id: string, pageSignal: AbortSignal): void {
  // Each rendering owns its live parts (the terminal's WebSocket, log streams): the next one ends them.
  rendering.get(root)?.abort();
  const own = new AbortController();
  rendering.set(root, own);
  pageSignal.addEventListener("abort", () => own.abort(), { once: true });
  const signal = own.signal;
  const error = h("div", { class: "error" });
  const fail = (e: unknown) => (error.textContent = String((e as Error).message));
  fill(root, h("h1", {}, `Sandbox ${id}`), h("p", { class: "muted", "data-test": "loading" }, "Loading..."));
  void (async () => {
    let s: { state: string; template: string; resources: Record<string, number> };
    try {
      s = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return goneSandbox(root, id);
      fail(e);
      return fill(root, h("h1", {}, `Sandbox ${id}`), error);
    }
    if (signal.aborted) return;
    if (s.state === "deleted") return goneSandbox(root, id);
    const act = (what: string) => async () => {
      try {
        if (what === "delete") {
          if (!confirm(`Delete sandbox ${id}? Its files are lost.`)) return;
          await api("DELETE", `/v1/sandboxes/${id}`);
          location.hash = "#/sandboxes";
          return;
        }
        await api("POST", `/v1/sandboxes/${id}/${what}`);
        // The page is built again for the new state (live parts open only when it runs).
        sandboxPage(root, id, pageSignal);
      } catch (e) {
        fail(e);
      }
    };
    const head = h(
      "div",
      { class: "row" },
      h("span", { "data-test": "state", class: `state-${s.state}` }, s.state),
      h(
        "span",
        { class: "muted" },
        `${s.template} · ${s.resources.cpus} CPU · ${s.resources.memoryMiB} MiB · disk ${s.resources.diskMiB} MiB`,
      ),
    );
    const controls = h(
      "div",
      { class: "row" },
      ...(ACTIONS[s.state] ?? ["delete"]).map((a) => h("button", { onclick: act(a), "data-action": a }, a)),
    );
    if (s.state !== "running") {
      const why =
        s.state === "paused"
          ? "This sandbox is paused: its processes are frozen. Resume it to use its terminal, files and processes."
          : s.state === "hibernated"
            ? "This sandbox is hibernated: its files are kept, nothing runs. Wake it to use its terminal, files and processes."
            : `This sandbox is ${s.state}.`;
      fill(
        root,
        h("h1", {}, `Sandbox ${id}`),
        head,
        controls,
        error,
        h("p", { "data-test": "not-running" }, why),
      );
      return;
    }
    liveSandbox(root, id, signal, { head, controls, error, fail });
  })();
}

/** The page of a sandbox that does not exist (never did, or was deleted). */
function goneSandbox(root: HTMLElement, id: string): void {
  fill(
    root,
    h("h1", {}, "No such sandbox"),
    h(
      "p",
      { "data-test": "gone" },
      `There is no sandbox ${id}: it was deleted, or it belongs to another tenant, or the link is wrong.`,
    ),
    h("p", {}, h("a", { href: "#/sandboxes" }, "All sandboxes")),
  );
}

/** A running sandbox's live parts: terminal, files, processes, ports. */
function liveSandbox(
  root: HTMLElement,
  id: string,
  signal: AbortSignal,
  top: { head: HTMLElement; controls: HTMLElement; error: HTMLElement; fail: (e: unknown) => void },
): void {
  const { fail } = top;
  const term = h("div", { class: "terminal", "data-test": "terminal" });
  const files = h("div");
  const procs = h("div");
  const ports = h("div");
  fill(
    root,
    h("h1", {}, `Sandbox ${id}`),
    top.head,
    top.controls,
    top.error,
    h("h2", {}, "Terminal"),
    term,
    h("h2", {}, "Files"),
    files,
    h("h2", {}, "Processes"),
    procs,
    h("h2", {}, "Ports"),
    ports,
  );

  // The terminal: xterm.js over the PTY WebSocket; the key travels as a subprotocol.
  const xterm = new Terminal({ cols: 100, rows: 18, convertEol: false });
  xterm.open(term);
  const ws = new WebSocket(
    `${location.origin.replace(/^http/, "ws")}/v1/sandboxes/${id}/pty?cols=100&rows=18`,
    ["berth", `berth.bearer.${session.key()}`],
  );
  ws.binaryType = "arraybuffer";
  ws.onmessage = (m) => {
    if (m.data instanceof ArrayBuffer) xterm.write(new Uint8Array(m.data));
  };
  ws.onclose = () => xterm.write("\r\n[disconnected]\r\n");
  xterm.onData((d) => ws.readyState === ws.OPEN && ws.send(new TextEncoder().encode(d)));
  signal.addEventListener("abort", () => {
    ws.close();
    xterm.dispose();
  });

  // Files: one directory at a time; upload into it, download any file.
  let cwd = "/workspace";
  const upload = h("input", { type: "file", "data-test": "upload" });
  upload.addEventListener("change", async () => {
    const f = upload.files?.[0];
    if (!f) return;
    try {
      await api(
        "PUT",
        `/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(`${cwd}/${f.name}`)}`,
        f,
        true,
      );
      await listFiles();
    } catch (e) {
      fail(e);
    }
  });
  async function download(path: string) {
    const res = await fetch(`/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(path)}`, {
      headers: { authorization: `Bearer ${session.key()}` },
    });
    const a = h("a", { href: URL.createObjectURL(await res.blob()), download: path.split("/").pop() });
    a.click();
  }
  async function listFiles() {
    const r = await api<{ entries: Array<{ name: string; type: string; size: number }> }>(
      "GET",
      `/v1/sandboxes/${id}/files?path=${encodeURIComponent(cwd)}`,
    );
    const up =
      cwd === "/"
        ? null
        : h(
            "li",
            {},
            h(
              "a",
              {
                role: "button",
                tabindex: "0",
                onclick: () => {
                  cwd = cwd.replace(/\/[^/]+$/, "") || "/";
                  void listFiles();
                },
              },
              "..",
            ),
          );
    fill(
      files,
      h("div", { class: "row" }, h("strong", {}, cwd), "upload:", upload),
      h(
        "ul",
        { "data-test": "files" },
        up,
        ...r.entries.map((e) =>
          h(
            "li",
            {},
            e.type === "dir"
              ? h(
                  "a",
                  {
                    role: "button",
                    tabindex: "0",
                    onclick: () => {
                      cwd = `${cwd === "/" ? "" : cwd}/${e.name}`;
                      void listFiles();
                    },
                  },
                  `${e.name}/`,
                )
              : h(
                  "a",
                  { role: "button", tabindex: "0", onclick: () => download(`${cwd}/${e.name}`) },
                  e.name,
                ),
            h("span", { class: "muted" }, ` ${e.type === "dir" ? "" : `${e.size} B`}`),
          ),
        ),
      ),
    );
  }

  // Processes, and the logs of the one picked, streamed as they come.
  const log = h("pre", { class: "log" });
  let following: AbortController | null = null;
  async function listProcs() {
    const r = await api<{
      items: Array<{ pid: number; cmd: string[]; state: string; exitCode: number | null }>;
    }>("GET", `/v1/sandboxes/${id}/processes`);
    fill(
      procs,
      h(
        "table",
        {},
        ...r.items.map((p) =>
          h(
            "tr",
            {},
            h("td", {}, p.pid),
            h("td", {}, p.cmd.join(" ")),
            h("td", {}, p.state),
            h("td", {}, p.exitCode ?? ""),
            h("td", {}, h("button", { onclick: () => follow(p.pid) }, "logs")),
          ),
        ),
      ),
      log,
    );
  }
  function follow(pid: number) {
    following?.abort();
    following = new AbortController();
    log.textContent = "";
    signal.addEventListener("abort", () => following?.abort());
    void events(
      `/v1/sandboxes/${id}/processes/${pid}/logs`,
      (e) => {
        if (e.event === "stdout" || e.event === "stderr") log.textContent += e.data.data ?? "";
      },
      following.signal,
    ).catch(() => {});
  }

  // Exposed ports: expose one, open its link.
  const portInput = h("input", {
    type: "number",
    min: "1",
    max: "65535",
    placeholder: "port",
    "data-test": "port",
  });
  async function listPorts() {
    const r = await api<{ items: Array<{ port: number; url: string; public: boolean }> }>(
      "GET",
      `/v1/sandboxes/${id}/ports`,
    );
    fill(
      ports,
      h(
        "div",
        { class: "row" },
        portInput,
        h(
          "button",
          {
            onclick: async () => {
              try {
                const p = await api("POST", `/v1/sandboxes/${id}/ports`, {
                  port: Number(portInput.value),
                  public: false,
                });
                await listPorts();
                const link = ports.querySelector(`[data-port="${p.port}"]`);
                if (link && p.token) link.setAttribute("href", `${p.url}?token=${p.token}`);
              } catch (e) {
                fail(e);
              }
            },
          },
          "Expose",
        ),
      ),
      h(
        "ul",
        {},
        ...r.items.map((p) =>
          h(
            "li",
            {},
            h("a", { href: p.url, target: "_blank", "data-port": p.port }, `${p.port} → ${p.url}`),
            p.public ? " (public)" : "",
          ),
        ),
      ),
    );
  }

  void Promise.all([listFiles(), listProcs(), listPorts()]).catch(fail);
}
