/**
 * Reads the links of the repository's Markdown (README, SECURITY, docs/) so a test can check
 * each one: files and anchors must exist in the repository, other links go to public sites.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One link found in a Markdown file. */
export interface MarkdownLink {
  file: string;
  line: number;
  target: string;
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replace(/ /g, "-");
}

/** Lines outside fenced code blocks, with their line numbers. */
function proseLines(text: string): [number, string][] {
  const out: [number, string][] = [];
  let fenced = false;
  text.split("\n").forEach((line, i) => {
    if (line.startsWith("```")) fenced = !fenced;
    else if (!fenced) out.push([i + 1, line]);
  });
  return out;
}

/** The anchors of a Markdown text's headings (a repeated heading gets -1, -2, as on GitHub). */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, line] of proseLines(text)) {
    const m = /^#{1,6} (.+)$/.exec(line);
    if (!m) continue;
    const base = headingAnchor(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Inline links and images `[text](target)` of a Markdown text, outside code. */
export function linksOf(file: string, text: string): MarkdownLink[] {
  const out: MarkdownLink[] = [];
  for (const [line, content] of proseLines(text)) {
    const prose = content.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
      out.push({ file, line, target: m[1] as string });
  }
  return out;
}

/** README.md, SECURITY.md and every Markdown file under docs/, as paths relative to `root`. */
export function markdownFiles(root: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".md") ? [join(dir, e.name)] : [],
    );
  return ["README.md", "SECURITY.md", ...walk("docs")];
}

/** The text of a repository file. */
export function readRepoFile(root: string, rel: string): string {
  return readFileSync(join(root, rel), "utf8");
}
