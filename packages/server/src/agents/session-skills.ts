import { posix } from "node:path";
import { type AgentOptions, InvalidRequestError, PayloadTooLargeError } from "@berth/core";
import { MAX_SESSION_SKILL_BYTES, type SessionSkill } from "@berth/core/contract";
import type { InputFile } from "./session-seed.js";

/**
 * Where uploaded skills go, relative to the working directory: `claude` finds project skills
 * there when its setting sources include `project` (the SDK's default loads every source).
 */
export const SKILLS_DIR = ".claude/skills";

/**
 * Checks a create call's skill folders against the session's options and answers their files
 * as input files of the working directory (`.claude/skills/<name>/<path>`), so they are placed
 * like any other input, as the sandbox user, before the first turn. A skill folder needs a
 * `SKILL.md` whose front matter has a `description` (what the model is shown) and, if it has a
 * `name`, the folder's. 400 naming the field for anything else (413 past the size cap).
 */
export function skillFiles(skills: SessionSkill[], o: AgentOptions): InputFile[] {
  if (o.settingSources && !o.settingSources.includes("project"))
    throw new InvalidRequestError(
      `uploaded skills are placed in the working directory's ${SKILLS_DIR}, which claude reads only with the "project" setting source: add "project" to agent.settingSources or leave it out`,
      { field: "agent.settingSources" },
    );
  if (o.disallowedTools?.includes("Skill"))
    throw new InvalidRequestError(
      'agent.disallowedTools has "Skill": the agent could not use the uploaded skills; remove it or the skills',
      { field: "agent.disallowedTools" },
    );
  const names = new Set<string>();
  let bytes = 0;
  const out: InputFile[] = [];
  for (const [i, skill] of skills.entries()) {
    const field = `skills[${i}]`;
    if (names.has(skill.name))
      throw new InvalidRequestError(`${field}.name "${skill.name}" is given twice`, {
        field: `${field}.name`,
      });
    names.add(skill.name);
    if (Array.isArray(o.skills) && !o.skills.includes(skill.name))
      throw new InvalidRequestError(
        `agent.skills does not name the uploaded skill "${skill.name}", so the agent could not use it: add it to agent.skills or leave agent.skills out`,
        { field: "agent.skills" },
      );
    let manifest: string | undefined;
    for (const [j, f] of skill.files.entries()) {
      const path = skillFilePath(f.path, `${field}.files[${j}].path`);
      const body = Buffer.from(f.content, f.encoding === "base64" ? "base64" : "utf8");
      bytes += body.length;
      if (bytes > MAX_SESSION_SKILL_BYTES)
        throw new PayloadTooLargeError(
          `the uploaded skills are larger than ${MAX_SESSION_SKILL_BYTES / (1 << 20)} MiB in all (at ${field}.files[${j}])`,
          { field: `${field}.files[${j}].content`, maxBytes: MAX_SESSION_SKILL_BYTES },
        );
      if (path === "SKILL.md") manifest = body.toString("utf8");
      out.push({ ...f, path: `${SKILLS_DIR}/${skill.name}/${path}` });
    }
    if (manifest === undefined)
      throw new InvalidRequestError(`${field} has no SKILL.md at the top of its folder`, {
        field: `${field}.files`,
      });
    checkFrontMatter(manifest, skill.name, field);
  }
  return out;
}

/** A file's path inside its skill folder, normalised; 400 for one that leaves the folder. */
function skillFilePath(path: string, field: string): string {
  const normal = posix.normalize(path);
  // NUL cannot be in a file name, and a path must not reach out of the skill's folder.
  if (
    path.includes("\0") ||
    path.startsWith("/") ||
    normal === "." ||
    normal === ".." ||
    normal.startsWith("../")
  )
    throw new InvalidRequestError(
      `${field} must be a relative path inside the skill's folder, got "${path}"`,
      {
        field,
      },
    );
  return normal;
}

/**
 * The `---` fenced YAML front matter at the top of SKILL.md: `description` is required (it is
 * what the model is shown to choose the skill by); a `name` must be the folder's. Only plain
 * `key: value` lines are read, which is all these two fields need.
 */
function checkFrontMatter(manifest: string, name: string, field: string): void {
  const lines = manifest.replace(/^\uFEFF/, "").split(/\r?\n/);
  const end = lines.indexOf("---", 1);
  if (lines[0] !== "---" || end < 0)
    throw new InvalidRequestError(
      `${field}'s SKILL.md must start with front matter: a line "---", "name: ${name}", "description: ...", and a line "---"`,
      { field: `${field}.files` },
    );
  const fields = new Map<string, string>();
  for (const line of lines.slice(1, end)) {
    const m = /^([A-Za-z_-]+):\s*(.*)$/.exec(line);
    if (m?.[1]) fields.set(m[1], (m[2] ?? "").replace(/^(["'])(.*)\1$/, "$2").trim());
  }
  if (!fields.get("description"))
    throw new InvalidRequestError(
      `${field}'s SKILL.md front matter has no description (the model chooses skills by it)`,
      { field: `${field}.files` },
    );
  const named = fields.get("name");
  if (named !== undefined && named !== name)
    throw new InvalidRequestError(
      `${field}'s SKILL.md says name "${named}" but the skill is uploaded as "${name}": use one name`,
      { field: `${field}.name` },
    );
}
