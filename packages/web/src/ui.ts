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

/** A bar chart of labelled values (an inline SVG). */
export function barChart(
  rows: Array<{ label: string; value: number }>,
  width = 640,
  height = 200,
): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height + 30));
  svg.setAttribute("role", "img");
  const max = Math.max(...rows.map((r) => r.value), 1e-9);
  const bw = width / Math.max(rows.length, 1);
  rows.forEach((r, i) => {
    const bh = (r.value / max) * height;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * bw + 4));
    rect.setAttribute("y", String(height - bh));
    rect.setAttribute("width", String(Math.max(bw - 8, 2)));
    rect.setAttribute("height", String(bh));
    rect.setAttribute("fill", "#2563eb");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${r.label}: $${r.value.toFixed(4)}`;
    rect.append(title);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", String(i * bw + 4));
    text.setAttribute("y", String(height + 16));
    text.setAttribute("font-size", "11");
    text.textContent = r.label;
    svg.append(rect, text);
  });
  return svg;
}

export const age = (iso: string) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
};
export const usd = (n: number | undefined) => (n === undefined ? "-" : `$${n.toFixed(4)}`);
