/** Pieces every part of the contract uses: text patterns, paths, env and labels, id params. */
import { Type as T, type TSchema } from "@sinclair/typebox";

/** Longest span a request may give in seconds (larger values are refused, not overflowed). */
export const TEN_YEARS_S = 315_360_000;

const ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$";
const LABEL_KEY = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$";

/** A sandbox id as the server makes them. */
export const SandboxId = T.String({ pattern: "^sb[a-z0-9]{16}$", description: "Sandbox id" });
/** `:id` of the sandbox routes. */
export const SandboxParams = T.Object({ id: T.String({ maxLength: 64 }) });

/**
 * Text without control characters (C0 and DEL): NUL cannot reach the kernel in a path or an
 * environment, and the others only garble logs and listings. See PATTERN_MEANINGS.
 */
export const NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$";
/** The same, for environment values, where tab, newline and carriage return are meaningful. */
export const NO_CONTROL_BUT_SPACE = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$";

/** An absolute path inside the sandbox. */
export const SandboxPath = T.String({
  minLength: 1,
  maxLength: 4096,
  pattern: "^/[^\\u0000-\\u001f\\u007f]*$",
});

/** Environment variables given to a sandbox, command or agent. */
export const Env = T.Record(
  T.String({ pattern: ENV_NAME, maxLength: 256 }),
  T.String({ maxLength: 32768, pattern: NO_CONTROL_BUT_SPACE }),
  { maxProperties: 256, additionalProperties: false },
);
/** Labels of a sandbox (`key=value`, filterable in listings). */
export const Labels = T.Record(
  T.String({ pattern: LABEL_KEY }),
  T.String({ maxLength: 256, pattern: NO_CONTROL }),
  { maxProperties: 64, additionalProperties: false },
);

/** What a pattern failure of the schemas above means, in words (else the regex is shown). */
export const PATTERN_MEANINGS: Record<string, string> = {
  [NO_CONTROL]: "must not contain control characters",
  [NO_CONTROL_BUT_SPACE]:
    "must not contain control characters (tab, newline and carriage return are allowed)",
  [SandboxPath.pattern as string]: "must be an absolute path without control characters",
  [ENV_NAME]: "must be a variable name (letters, digits and _, not starting with a digit)",
  [LABEL_KEY]: "must be a label key (up to 63 letters, digits and . _ / -, starting with a letter or digit)",
  // Patterns written inline in the other contract files, keyed by their text.
  "^[^=]+=.*$": "must be key=value",
  "^[A-Za-z0-9_-]+$": "must be an id of letters, digits, _ and - (as the control plane writes it)",
  "^[\\x21-\\x7e]+$": "must be printable ASCII without spaces (a key or secret as issued)",
  "^[A-Za-z0-9_-]{1,64}$": "must be a name of 1-64 letters, digits, _ and -",
  "^[a-z0-9-]{1,64}$": "must be a skill name of 1-64 lowercase letters, digits and -",
  "^[0-9]{1,4}$": "must be a whole number of at most 4 digits",
  "^[0-9]{1,7}$": "must be a process id (a whole number)",
  "^[0-9]{1,15}$": "must be the nextCursor of the previous page",
  "^[1-9][0-9]{0,4}$": "must be a port number, 1-65535",
  "^[a-z0-9][a-z0-9_-]{0,62}$":
    "must be up to 63 lowercase letters, digits, _ and -, starting with a letter or digit",
  "^sb[a-z0-9]{16}$": "must be a sandbox id (sb and 16 lowercase letters or digits)",
};

/** A string enum from a list of values (an OpenAPI `anyOf` of constants). */
export function OneOf<const V extends string>(
  values: readonly V[],
  options?: { description?: string; default?: V },
) {
  return T.Union(
    values.map((v) => T.Literal(v)),
    options,
  );
}

/** `{items: [...]}`: the shape of every unpaged listing. */
export function ListOf<S extends TSchema>(item: S) {
  return T.Object({ items: T.Array(item) });
}

/** `{items: [...], nextCursor}`: a paged listing. */
export function PageOf<S extends TSchema>(item: S) {
  return T.Object({ items: T.Array(item), nextCursor: T.Union([T.String(), T.Null()]) });
}
