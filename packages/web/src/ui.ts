/** A few DOM helpers: the dashboard has no framework. */
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "class") el.className = String(v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children)
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  for (const c of children)
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
}

/** A tiny line chart of the last values (an inline SVG). */
export function sparkline(values: number[], width = 90, height = 22): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  const max = Math.max(...values, 1e-9);
  const points = values.map(
    (v, i) => `${(i / Math.max(values.length - 1, 1)) * width},${height - (v / max) * (height - 2) - 1}`,
  );
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2563eb");
  svg.append(line);
  return svg;
}

/** What a page shows while its data is on the way. */
export const loading = (): HTMLElement =>
  h("p", { class: "muted loading", "data-test": "loading" }, "Loading…");

/** A table's one row while its data is on the way. */
export const loadingRow = (columns: number): HTMLElement =>
  h(
    "tr",
    {},
    h("td", { colspan: String(columns), class: "muted loading", "data-test": "loading" }, "Loading…"),
  );

export const age = (iso: string) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
};
export const usd = (n: number | undefined) => (n === undefined ? "-" : `$${n.toFixed(4)}`);
