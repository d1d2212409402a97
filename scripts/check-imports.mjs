#!/usr/bin/env node
// Checks the import graph of packages/*/src (part of `npm run check`):
// - no cycle between source files (relative imports, type-only ones too: a cycle of types is
//   still two files that cannot be understood apart);
// - no runtime driver package imports another driver package (shared host code lives in
//   @berth/linux-host, shared contracts in @berth/core).
// Prints each cycle or forbidden import and exits 1; silent and 0 when the graph is clean.
// Arguments: `--except a,b` leaves those packages out (default: every package is checked).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const packagesDir = join(root, "packages");
/** Runtime driver packages: every `packages/runtime-*`. */
const isDriver = (pkg) => pkg.startsWith("runtime-");

/** Every .ts/.tsx source file below `dir` (tests included: they must not close a cycle either). */
function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Module specifiers a file imports or re-exports (static and dynamic). */
function specifiers(text) {
  const re =
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  const found = [];
  for (const m of text.matchAll(re)) found.push(m[1] ?? m[2] ?? m[3]);
  return found;
}

/** The file a relative specifier names (`./x.js` is `./x.ts` in source). */
function resolveRelative(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const candidate of [
    base.replace(/\.js$/, ".ts"),
    base.replace(/\.js$/, ".tsx"),
    `${base}.ts`,
    join(base, "index.ts"),
  ])
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {}
  return null;
}

const problems = [];
const graph = new Map();
const exceptAt = process.argv.indexOf("--except");
const except = exceptAt >= 0 ? (process.argv[exceptAt + 1] ?? "").split(",") : [];
for (const pkg of readdirSync(packagesDir).filter((p) => !except.includes(p))) {
  const src = join(packagesDir, pkg, "src");
  try {
    statSync(src);
  } catch {
    continue;
  }
  for (const file of sources(src)) {
    const edges = [];
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) {
        const target = resolveRelative(file, spec);
        if (target) edges.push(target);
      } else if (isDriver(pkg)) {
        const other = /^@berth\/([^/]+)/.exec(spec)?.[1];
        if (other && other !== pkg && isDriver(other))
          problems.push(`driver imports driver: ${relative(root, file)} imports ${spec}`);
      }
    }
    graph.set(file, edges);
  }
}

// Tarjan's strongly connected components: a component of more than one file is a cycle.
let index = 0;
const stack = [];
const meta = new Map();
function visit(v) {
  meta.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!meta.has(w)) {
      visit(w);
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
    } else if (meta.get(w).onStack) meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
  }
  if (meta.get(v).low === meta.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1)
      problems.push(`file cycle: ${component.map((f) => relative(root, f)).join(" <-> ")}`);
  }
}
for (const v of graph.keys()) if (!meta.has(v)) visit(v);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
