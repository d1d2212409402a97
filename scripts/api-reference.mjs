#!/usr/bin/env node
// Writes docs/api.md, the HTTP API reference, from the OpenAPI document the server builds from
// its route schemas (the same ones that validate requests). Run after changing a route:
//   npm run build && node scripts/api-reference.mjs
// test/docs/api-reference.test.ts fails while docs/api.md differs from what this writes.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const METHODS = ["get", "post", "put", "patch", "delete"];

/** A schema as a short type: `string`, `"a" | "b"`, `integer[]`, `object`. */
function typeOf(s) {
  if (!s || typeof s !== "object") return "any";
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const alts = s.anyOf ?? s.oneOf;
  if (Array.isArray(alts)) return [...new Set(alts.map(typeOf))].join(" | ");
  if (s.type === "array") return `${typeOf(s.items)}[]`;
  if (Array.isArray(s.type)) return s.type.join(" | ");
  return s.type ?? "any";
}

/** Table cell text: one line, pipes escaped. */
function cell(text) {
  return String(text ?? "")
    .replace(/\s*\n\s*/g, " ")
    .replace(/\|/g, "\\|");
}

/** Limits a schema states, as words (`1..65535`, `at most 256 chars`). */
function limits(s) {
  const out = [];
  if (s.minimum !== undefined || s.maximum !== undefined) out.push(`${s.minimum ?? ""}..${s.maximum ?? ""}`);
  if (s.maxLength !== undefined) out.push(`at most ${s.maxLength} chars`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
  return out.join(", ");
}

/** Rows of a body's fields; nested objects' fields follow as `parent.child` (`list[].child`). */
function fieldRows(schema, prefix = "", depth = 0) {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  return Object.entries(props).flatMap(([name, s]) => {
    const notes = [s.description, limits(s)].filter(Boolean).join("; ");
    const row = `| \`${prefix}${name}\` | ${cell(typeOf(s))} | ${required.has(name) ? "yes" : ""} | ${cell(notes)} |`;
    if (depth >= 2) return [row];
    const inner = s.type === "array" ? s.items : (s.anyOf ?? s.oneOf ?? [s]).find((x) => x?.properties);
    const path = s.type === "array" ? `${prefix}${name}[].` : `${prefix}${name}.`;
    return [row, ...(inner?.properties ? fieldRows(inner, path, depth + 1) : [])];
  });
}

function operationText(method, path, op) {
  const lines = [`### \`${method.toUpperCase()} ${path}\``, ""];
  if (op.summary) lines.push(cell(op.summary), "");
  if (op.description) lines.push(op.description.trim(), "");
  const params = op.parameters ?? [];
  if (params.length > 0) {
    lines.push("| parameter | in | type | required | notes |", "| --- | --- | --- | --- | --- |");
    for (const p of params)
      lines.push(
        `| \`${p.name}\` | ${p.in} | ${cell(typeOf(p.schema))} | ${p.required ? "yes" : ""} | ${cell([p.description, limits(p.schema ?? {})].filter(Boolean).join("; "))} |`,
      );
    lines.push("");
  }
  const body = op.requestBody?.content;
  if (body) {
    const [type, media] = Object.entries(body)[0];
    const rows = fieldRows(media.schema);
    lines.push(`Body (\`${type}\`)${rows.length ? ":" : `: ${cell(typeOf(media.schema))}`}`, "");
    if (rows.length)
      lines.push("| field | type | required | notes |", "| --- | --- | --- | --- |", ...rows, "");
  }
  const responses = Object.entries(op.responses ?? {});
  if (responses.length > 0) {
    lines.push("Responses:", "");
    for (const [code, r] of responses) {
      // fastify-swagger's placeholder says nothing: only a real description is shown.
      const said = r.description && r.description !== "Default Response" ? `: ${cell(r.description)}` : "";
      lines.push(`- **${code}**${said}`);
    }
    lines.push("");
  }
  return lines;
}

/** The area an API path belongs to: `/v1/sandboxes/{id}/exec` is under "sandboxes". */
function areaOf(path) {
  const parts = path.split("/").filter(Boolean);
  return parts[0] === "v1" ? (parts[1] ?? "v1") : parts[0];
}

/** docs/api.md's text for an OpenAPI document. */
export function renderApiReference(doc) {
  const byArea = new Map();
  for (const [path, item] of Object.entries(doc.paths ?? {}))
    for (const method of METHODS) {
      if (!item[method]) continue;
      const area = areaOf(path);
      if (!byArea.has(area)) byArea.set(area, []);
      byArea.get(area).push([method, path, item[method]]);
    }
  const areas = [...byArea.keys()].sort();
  const out = [
    "# HTTP API reference",
    "",
    "<!-- Written by scripts/api-reference.mjs from the server's OpenAPI document: do not edit by hand. -->",
    "",
    `${doc.info?.title ?? "Berth API"} ${doc.info?.version ?? ""}. Every route needs \`Authorization: Bearer <API key>\`.`,
    'Errors are `{"error": {"code", "message", ...}}` with a stable snake_case `code`.',
    "A running server serves the same document at `GET /openapi.json` and as a page at `/api-docs`.",
    "",
    ...areas.map((a) => `- [${a}](#${a})`),
    "",
  ];
  for (const area of areas) {
    out.push(`## ${area}`, "");
    for (const [method, path, op] of byArea.get(area)) out.push(...operationText(method, path, op));
  }
  return `${out.join("\n").trimEnd()}\n`;
}

/** The server's version, as the document states it. */
export function serverVersion(root) {
  return JSON.parse(readFileSync(join(root, "packages/server/package.json"), "utf8")).version;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const { openApiDocument } = await import("../packages/server/dist/index.js");
  const doc = await openApiDocument(serverVersion(root));
  writeFileSync(join(root, "docs/api.md"), renderApiReference(doc));
  process.stderr.write("wrote docs/api.md\n");
}
