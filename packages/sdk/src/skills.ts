import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import type { SessionSkill } from "@berth/core/contract";

/** An uploaded skill folder of `Sessions.create({skills})`: its name and files. */
export type SkillFolder = SessionSkill;

/** Most files a skill folder may have (the API's limit). */
const MAX_FILES = 256;

/**
 * A local skill folder (a `SKILL.md` and the files it refers to) as `Sessions.create` uploads
 * it: every regular file beneath `dir`, base64, paths relative to it. The skill is named after
 * the folder unless `name` is given. Symbolic links are refused (they would not mean the same
 * in the sandbox). Node only.
 */
export function readSkillFolder(dir: string, name = basename(resolve(dir))): SkillFolder {
  const root = resolve(dir);
  const files: SkillFolder["files"] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at).sort()) {
      const path = join(at, entry);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) throw new Error(`${path} is a symbolic link: a skill folder takes files only`);
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) {
        if (files.length === MAX_FILES) throw new Error(`${dir} has more than ${MAX_FILES} files`);
        files.push({
          path: relative(root, path).split(sep).join("/"),
          content: readFileSync(path).toString("base64"),
          encoding: "base64",
        });
      }
    }
  };
  if (!lstatSync(root).isDirectory()) throw new Error(`${dir} is not a directory`);
  walk(root);
  return { name, files };
}
