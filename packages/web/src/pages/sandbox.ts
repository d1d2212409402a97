import { Terminal } from "@xterm/xterm";
import { api, events, session } from "../api.js";
import { fill, h } from "../ui.js";
import type { ExposedPort, FileList, ListOf, PortInfo, ProcessInfo, SandboxView } from "../wire.js";

/** One sandbox: lifecycle, a terminal, files, processes with their logs, exposed ports. */
export function sandboxPage(root: HTMLElement, id: string, signal: AbortSignal): void {
  const error = h("div", { class: "error" });
  const head = h("div");
  const fail = (e: unknown) => (error.textContent = String((e as Error).message));
  const act = (what: string) => async () => {
    try {
      if (what === "delete") {
        await api("DELETE", `/v1/sandboxes/${id}`);
        location.hash = "#/sandboxes";
        return;
      }
      await api("POST", `/v1/sandboxes/${id}/${what}`);
      await refresh();
    } catch (e) {
      fail(e);
    }
  };
  const term = h("div", { class: "terminal", "data-test": "terminal" });
  const files = h("div");
  const procs = h("div");
  const ports = h("div");
  fill(
    root,
    h("h1", {}, `Sandbox ${id}`),
    head,
    h(
      "div",
      { class: "row" },
      ...["pause", "resume", "hibernate", "wake", "delete"].map((a) =>
        h("button", { onclick: act(a), "data-action": a }, a),
      ),
    ),
    error,
    h("h2", {}, "Terminal"),
    term,
    h("h2", {}, "Files"),
    files,
    h("h2", {}, "Processes"),
    procs,
    h("h2", {}, "Ports"),
    ports,
  );

  async function refresh() {
    const s = await api<SandboxView>("GET", `/v1/sandboxes/${id}`);
    fill(
      head,
      h(
        "div",
        { class: "row" },
        h("span", { "data-test": "state", class: `state-${s.state}` }, s.state),
        h(
          "span",
          { class: "muted" },
          `${s.template} · ${s.resources.cpus} CPU · ${s.resources.memoryMiB} MiB · disk ${s.resources.diskMiB} MiB`,
        ),
      ),
    );
  }

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
                const p = await api<ExposedPort>("POST", `/v1/sandboxes/${id}/ports`, {
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

  void Promise.all([refresh(), listFiles(), listProcs(), listPorts()]).catch(fail);
}
