/**
 * Schema validation of requests and the messages its failures give: each names the field and
 * says what to send (`network.egress must be one of none, allowlist, open`), never a regex or
 * Ajv's wording when the schema knows better.
 */
import { InvalidRequestError } from "@berth/core";
import { PATTERN_MEANINGS } from "@berth/core/contract";

/**
 * Ajv options of the API. Bodies are validated strictly ("2" is not a number, "ls" is not
 * ["ls"]); `verbose` puts each failing schema beside the error, so a message can list the
 * allowed values or the known fields.
 */
export const AJV_OPTIONS = {
  coerceTypes: false,
  removeAdditional: false,
  allErrors: false,
  verbose: true,
} as const;

/** The part of an Ajv error the messages use. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  schema?: unknown;
  parentSchema?: { properties?: Record<string, unknown>; patternProperties?: Record<string, unknown> };
  data?: unknown;
}

/** `/resources/cpus` plus a missing or unknown property, as `resources.cpus`. */
export function fieldOf(e: SchemaError): string | undefined {
  const parts = e.instancePath.split("/").filter(Boolean);
  const p = e.params as { missingProperty?: string; additionalProperty?: string };
  if (p.missingProperty) parts.push(p.missingProperty);
  if (p.additionalProperty) parts.push(p.additionalProperty);
  return parts.map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~")).join(".") || undefined;
}

/** The constants an `anyOf` of literals allows (`[]` when a branch is not a literal). */
function literalsOf(branches: unknown): unknown[] {
  if (!Array.isArray(branches)) return [];
  const values = branches.map((b) => (b && typeof b === "object" && "const" in b ? b.const : undefined));
  return values.every((v) => v !== undefined) ? values : [];
}

const list = (values: readonly unknown[]) => values.map((v) => String(v)).join(", ");

/** "an integer", "a string": the type a schema wants, as words. */
function typeWords(type: unknown): string {
  const one = (t: string) =>
    t === "integer" ? "an integer" : t === "array" || t === "object" ? `an ${t}` : `a ${t}`;
  return Array.isArray(type) ? type.map(String).map(one).join(" or ") : one(String(type));
}

/**
 * The error to report: the one deepest in the value. In a union of objects (a session's
 * `sandbox` is `{id}` or a new sandbox's body), the branch that got furthest is the one meant.
 */
function deepest(errors: readonly SchemaError[]): SchemaError | undefined {
  let best: SchemaError | undefined;
  let bestDepth = -1;
  for (const e of errors) {
    if (e.keyword === "anyOf") continue;
    const depth = (fieldOf(e) ?? "").split(".").filter(Boolean).length;
    if (depth > bestDepth) [best, bestDepth] = [e, depth];
  }
  return best ?? errors[0];
}

/** What is wrong with the value, after its field name. */
function whatIsWrong(errors: readonly SchemaError[], first: SchemaError): string {
  const p = first.params as Record<string, unknown>;
  // An enum written as a union of literals: Ajv reports one `const` error per branch, then `anyOf`.
  const anyOf = errors.find((e) => e.keyword === "anyOf" && e.instancePath === first.instancePath);
  const allowed = literalsOf(anyOf?.schema);
  if (allowed.length > 0) return `must be one of ${list(allowed)}`;
  switch (first.keyword) {
    case "additionalProperties": {
      // A map (env, labels) whose key does not fit its pattern.
      const keyPattern = Object.keys(first.parentSchema?.patternProperties ?? {})[0];
      if (keyPattern)
        return `is not allowed: a key ${PATTERN_MEANINGS[keyPattern] ?? `must match the pattern ${keyPattern}`}`;
      const known = Object.keys(first.parentSchema?.properties ?? {});
      return known.length > 0 ? `is not a known field (known: ${list(known)})` : "is not a known field";
    }
    case "required":
      return "is required";
    case "enum":
      return `must be one of ${list(p.allowedValues as unknown[])}`;
    case "const":
      return `must be ${String(p.allowedValue)}`;
    case "type":
      return `must be ${typeWords(p.type)}${first.data === null ? " (not null)" : Array.isArray(first.data) ? " (not an array)" : first.data !== undefined ? ` (not ${typeof first.data === "object" ? "an object" : `a ${typeof first.data}`})` : ""}`;
    case "pattern":
      return PATTERN_MEANINGS[p.pattern as string] ?? `must match the pattern ${String(p.pattern)}`;
    case "minimum":
      return `must be at least ${p.limit}`;
    case "maximum":
      return `must be at most ${p.limit}`;
    case "exclusiveMinimum":
      return `must be more than ${p.limit}`;
    case "exclusiveMaximum":
      return `must be less than ${p.limit}`;
    case "minLength":
      return p.limit === 1 ? "must not be empty" : `must be at least ${p.limit} characters long`;
    case "maxLength":
      return `must be at most ${p.limit} characters long`;
    case "minItems":
      return `must have at least ${p.limit} item${p.limit === 1 ? "" : "s"}`;
    case "maxItems":
      return `must have at most ${p.limit} items`;
    case "maxProperties":
      return `must have at most ${p.limit} entries`;
    case "format":
      return `must be a ${String(p.format)} (e.g. 2026-01-31T12:00:00Z)`;
    default:
      return first.message ?? "is invalid";
  }
}

/**
 * The 400 a failed schema check answers with. `context` is where the value was (`body`,
 * `querystring`, `params`, `headers`); `details.field` names the field, dotted.
 */
export function validationError(
  errors: readonly SchemaError[],
  context: string | undefined,
): InvalidRequestError {
  const first = deepest(errors);
  const field = first ? fieldOf(first) : undefined;
  const what = first ? whatIsWrong(errors, first) : "is invalid";
  const where = context === "body" || context === undefined ? "" : `${context} `;
  const subject = field ?? (context === "body" ? "the body" : (context ?? "the request"));
  return new InvalidRequestError(`${where}${subject} ${what}`.trim(), { field: field ?? context });
}
