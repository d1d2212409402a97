import { existsSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { anchorsOf, headingAnchor, linksOf, markdownFiles, readRepoFile } from "./markdown-links.js";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), "..", ".."));

/** Checks one link; returns what is wrong with it, or null. */
function problem(file: string, target: string): string | null {
  if (/^https?:\/\//.test(target)) {
    const host = new URL(target).hostname;
    // Links in the docs may go to public sites only: no machine of ours, no private address.
    if (
      /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|\[?::1)/.test(host) ||
      !host.includes(".")
    )
      return `links to a private address (${host})`;
    return null;
  }
  if (/^[a-z]+:/.test(target))
    return target.startsWith("mailto:") ? null : "uses a scheme other than http(s)";
  const [path = "", anchor] = target.split("#");
  const resolved = path === "" ? file : normalize(join(dirname(file), decodeURIComponent(path)));
  if (relative(ROOT, join(ROOT, resolved)).startsWith("..") || resolved.startsWith(".."))
    return "points outside the repository";
  if (!existsSync(join(ROOT, resolved))) return `names a file that does not exist (${resolved})`;
  if (anchor !== undefined) {
    if (!resolved.endsWith(".md") || statSync(join(ROOT, resolved)).isDirectory())
      return /^L\d+(-L\d+)?$/.test(anchor) ? null : "has an anchor on a file that is not Markdown";
    if (!anchorsOf(readRepoFile(ROOT, resolved)).has(anchor))
      return `names an anchor that ${resolved} does not have (#${anchor})`;
  }
  return null;
}

describe("links in README.md, SECURITY.md and docs/", () => {
  it("each goes to a file and heading that exist in the repository, or to a public site", () => {
    const files = markdownFiles(ROOT);
    expect(files).toContain("docs/agents.md");
    const bad: string[] = [];
    let checked = 0;
    for (const file of files)
      for (const link of linksOf(file, readRepoFile(ROOT, file))) {
        checked++;
        const why = problem(file, link.target);
        if (why) bad.push(`${file}:${link.line} ${link.target}: ${why}`);
      }
    expect(bad, bad.join("\n")).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it("no text mentions a folder beside the repository (../shared) that cloners do not have", () => {
    for (const file of markdownFiles(ROOT))
      expect(readRepoFile(ROOT, file), file).not.toMatch(/\.\.\/shared\b/);
  });

  it("the checker itself catches a missing file, a missing anchor and a link out of the repository", () => {
    expect(problem("README.md", "docs/nope.md")).toMatch(/does not exist/);
    expect(problem("README.md", "docs/agents.md#no-such-heading")).toMatch(/anchor/);
    expect(problem("docs/agents.md", "../../outside.md")).toMatch(/outside/);
    expect(problem("README.md", "http://localhost:7070/")).toMatch(/private/);
    expect(problem("README.md", "docs/agents.md")).toBeNull();
    expect(headingAnchor("Lifecycle, snapshots, templates and volumes")).toBe(
      "lifecycle-snapshots-templates-and-volumes",
    );
    expect(headingAnchor("`BERTH_PORT` and friends")).toBe("berth_port-and-friends");
  });
});
