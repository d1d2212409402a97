import { readFileSync } from "node:fs";
import { PERMISSION_MODES, SESSION_EVENT_TYPES, type SessionWebhook } from "@berth/core/contract";
import { type AgentSpec, readSkillFolder, type SkillFolder } from "@berth/sdk";
import { UsageError } from "../args.js";

/** `--webhook URL[#EVENTS]` as a receiver of the create call (a URL's fragment is never sent anyway). */
export function parseWebhook(arg: string, usage: string): SessionWebhook {
  const hash = arg.indexOf("#");
  const url = hash < 0 ? arg : arg.slice(0, hash);
  if (!url) throw new UsageError(`--webhook needs a URL, got "${arg}"`, usage);
  if (hash < 0) return { url };
  const events = arg
    .slice(hash + 1)
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = events.find((e) => !(SESSION_EVENT_TYPES as readonly string[]).includes(e));
  if (bad !== undefined || events.length === 0)
    throw new UsageError(
      `--webhook ${arg}: after "#" give a comma list of ${SESSION_EVENT_TYPES.join(", ")}${bad ? ` (not "${bad}")` : ""}`,
      usage,
    );
  return { url, events: events as SessionWebhook["events"] };
}

/** A `--skill DIR` read for upload; a folder that cannot be read is a usage error (exit 2). */
export function skillFolder(dir: string, usage: string): SkillFolder {
  try {
    return readSkillFolder(dir);
  } catch (err) {
    throw new UsageError(`--skill ${dir}: ${(err as Error).message}`, usage);
  }
}

/**
 * The agent options of `agent run` that give the client a say over tool calls and the answer:
 * `--permission-mode`, `--hook TOOL`, `--output-schema FILE`, `--partial`.
 */
export function toolControl(v: Record<string, unknown>, usage: string): AgentSpec {
  const mode = v["permission-mode"] as string | undefined;
  if (mode !== undefined && !(PERMISSION_MODES as readonly string[]).includes(mode))
    throw new UsageError(`--permission-mode must be one of ${PERMISSION_MODES.join(", ")}`, usage);
  const hooks = v.hook as string[] | undefined;
  const schemaFile = v["output-schema"] as string | undefined;
  return {
    ...(mode ? { permissionMode: mode as AgentSpec["permissionMode"] } : {}),
    ...(hooks ? { hooks: { PreToolUse: hooks.map((matcher) => ({ matcher })) } } : {}),
    ...(schemaFile ? { outputFormat: { type: "json_schema", schema: readSchema(schemaFile, usage) } } : {}),
    ...(v.partial ? { includePartialMessages: true } : {}),
  };
}

function readSchema(file: string, usage: string): Record<string, unknown> {
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(`--output-schema ${file}: ${(err as Error).message}`, usage);
  }
  if (!schema || typeof schema !== "object" || Array.isArray(schema))
    throw new UsageError(`--output-schema ${file}: a JSON Schema is an object`, usage);
  return schema as Record<string, unknown>;
}
