import { Terminal } from "@xterm/xterm";
import { ApiError, api, events, session } from "../api.js";
import { fill, h, loading } from "../ui.js";
import type { ExposedPort, FileList, ListOf, PortInfo, ProcessInfo } from "../wire.js";

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
  fill(root, h("h1", {}, `Sandbox ${id}`), loading());
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
  async function fetchFile(path: string): Promise<Blob> {
    const res = await fetch(`/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(path)}`, {
      headers: { authorization: `Bearer ${session.key()}` },
    });
    if (!res.ok) throw new ApiError(res.status, "error", `cannot read ${path}: HTTP ${res.status}`);
    return res.blob();
  }
  async function download(path: string) {
    const a = h("a", { href: URL.createObjectURL(await fetchFile(path)), download: path.split("/").pop() });
    a.click();
  }
  // The file picked: shown as text or as an image, with a download button.
  const preview = h("div", { class: "preview", "data-test": "preview", hidden: true });
  let previewUrl: string | undefined;
  async function show(path: string, size: number) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = undefined;
    const head = h(
      "div",
      { class: "row" },
      h("strong", {}, path),
      h("button", { "data-test": "download", onclick: () => void download(path).catch(fail) }, "Download"),
      h("button", { onclick: () => (preview.hidden = true) }, "Close"),
    );
    preview.hidden = false;
    fill(preview, head, h("p", { class: "muted loading" }, "Loading…"));
    const kind = previewKind(path, size);
    if (kind === "too-large") {
      fill(preview, head, h("p", { class: "muted" }, `${size} B: too large to preview; download it.`));
      return;
    }
    try {
      const blob = await fetchFile(path);
      if (kind === "image") {
        previewUrl = URL.createObjectURL(blob);
        fill(preview, head, h("img", { src: previewUrl, alt: path, "data-test": "preview-image" }));
        return;
      }
      const text = textOf(new Uint8Array(await blob.arrayBuffer()));
      fill(
        preview,
        head,
        text === undefined
          ? h("p", { class: "muted" }, "A binary file: download it to open it.")
          : h("pre", { class: "log", "data-test": "preview-text" }, text),
      );
    } catch (e) {
      fill(preview, head, h("p", { class: "error" }, (e as Error).message));
    }
  }
  signal.addEventListener("abort", () => previewUrl && URL.revokeObjectURL(previewUrl));
  async function listFiles() {
    const r = await api<FileList>("GET", `/v1/sandboxes/${id}/files?path=${encodeURIComponent(cwd)}`);
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
      preview,
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
                  {
                    role: "button",
                    tabindex: "0",
                    "data-file": e.name,
                    onclick: () => void show(`${cwd === "/" ? "" : cwd}/${e.name}`, e.size),
                  },
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
    const r = await api<ListOf<ProcessInfo>>("GET", `/v1/sandboxes/${id}/processes`);
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
  /** Exposes a port (again: a new token) and keeps its token for this tab's links. */
  async function expose(port: number) {
    const p = await api<ExposedPort>("POST", `/v1/sandboxes/${id}/ports`, { port, public: false });
    if (p.token) portTokens.set(id, p.port, p.token);
    await listPorts();
  }
  async function listPorts() {
    const r = await api<ListOf<PortInfo>>("GET", `/v1/sandboxes/${id}/ports`);
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
                await expose(Number(portInput.value));
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
        ...r.items.map((p) => {
          const token = p.public ? null : portTokens.get(id, p.port);
          // A private port exposed elsewhere (the API, the CLI): its token was shown there only.
          if (!p.public && !token)
            return h(
              "li",
              {},
              `${p.port} → ${p.url} `,
              h(
                "button",
                {
                  "data-test": "port-new-link",
                  "data-port": p.port,
                  onclick: () => {
                    if (
                      confirm(
                        `A new link for port ${p.port} replaces its token: links made before stop working.`,
                      )
                    )
                      void expose(p.port).catch(fail);
                  },
                },
                "New link",
              ),
            );
          return h(
            "li",
            {},
            h(
              "a",
              { href: token ? `${p.url}?token=${token}` : p.url, target: "_blank", "data-port": p.port },
              `${p.port} → ${p.url}`,
            ),
            p.public ? " (public)" : "",
          );
        }),
      ),
    );
  }

  void Promise.all([listFiles(), listProcs(), listPorts()]).catch(fail);
}

/** Largest file the page previews (bigger ones are offered for download only). */
const PREVIEW_MAX_BYTES = 512 * 1024;
const IMAGE = /\.(png|jpe?g|gif|webp|svg|ico|bmp|avif)$/i;

/** How the page shows a file: by its name and size. */
function previewKind(path: string, size: number): "image" | "text" | "too-large" {
  if (size > (IMAGE.test(path) ? 8 * PREVIEW_MAX_BYTES : PREVIEW_MAX_BYTES)) return "too-large";
  return IMAGE.test(path) ? "image" : "text";
}

/** The bytes as text when they are UTF-8 without NULs; undefined for a binary file. */
function textOf(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The tokens of ports this tab exposed, kept like the API key in the tab's session storage: the
 * server shows a private port's token once, so a link made after a reload needs it from here.
 */
const portTokens = {
  all(): Record<string, string> {
    try {
      return JSON.parse(sessionStorage.getItem("berth.portTokens") ?? "{}");
    } catch {
      return {};
    }
  },
  get(sandbox: string, port: number): string | undefined {
    return portTokens.all()[`${sandbox}:${port}`];
  },
  set(sandbox: string, port: number, token: string): void {
    sessionStorage.setItem(
      "berth.portTokens",
      JSON.stringify({ ...portTokens.all(), [`${sandbox}:${port}`]: token }),
    );
  },
};
