import { type ParseArgsConfig, parseArgs } from "node:util";
import { parseDurationSeconds } from "./duration.js";
import { didYouMean } from "./suggest.js";

/** Bad command line or another local problem: main prints the message (and the usage text, if any) and exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** Option table in the shape `node:util` parseArgs takes. */
export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command accepts. */
export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpec;

/** Usage lines of the global flags, appended to every command's usage. */
export const GLOBAL_USAGE = `Global options:
  --url URL    server URL (default $BERTH_URL or http://127.0.0.1:$BERTH_PORT|7070)
  --key KEY    API key (default $BERTH_API_KEY or $BERTH_DATA_DIR/admin-key)
  --json       machine-readable output
  -h, --help   show this help`;

/** A parsed command line: option values, positionals, and the words after `--`. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** Everything after the first `--`, untouched (the command of `sandbox exec`). */
  rest: string[] | undefined;
}

/** Parses argv against the command's options plus the global ones; throws UsageError. */
export function parseCommandArgs(argv: string[], options: OptionSpec, usage: string): ParsedArgs {
  const dash = argv.indexOf("--");
  const head = dash < 0 ? argv : argv.slice(0, dash);
  const rest = dash < 0 ? undefined : argv.slice(dash + 1);
  try {
    const { values, positionals } = parseArgs({
      args: head,
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals, rest };
  } catch (err) {
    throw new UsageError(withSuggestion((err as Error).message, { ...GLOBAL_OPTIONS, ...options }), usage);
  }
}

/** parseArgs' "Unknown option '--memroy'" with the option that was probably meant. */
function withSuggestion(message: string, options: OptionSpec): string {
  const unknown = /^Unknown option '--([^'=]+)/.exec(message)?.[1];
  if (unknown === undefined) return message;
  return `unknown option '--${unknown}'${didYouMean(unknown, Object.keys(options), "--")}`;
}

/**
 * A duration flag as seconds (`30s`, `5m`, `2h`, `1d`, `2h30m`, or bare seconds), or undefined
 * when absent; throws UsageError when it is not a positive duration.
 */
export function parseDuration(
  value: unknown,
  flag: string,
  usage: string,
  opts: { integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const seconds = parseDurationSeconds(String(value));
  if (seconds === undefined || seconds <= 0 || (opts.integer && !Number.isInteger(seconds)))
    throw new UsageError(
      `--${flag} expects a duration such as 30s, 5m or 2h${opts.integer ? " (whole seconds)" : ""}, got '${String(value)}'`,
      usage,
    );
  return seconds;
}

/** `K=V` pairs of a repeatable flag as a record; throws UsageError on a missing `=`. */
export function parseKeyValues(list: unknown, flag: string, usage: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (list as string[] | undefined) ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flag} expects KEY=VALUE, got '${item}'`, usage);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** A numeric flag, or undefined when absent; throws UsageError when not a positive number. */
export function parseNumber(
  value: unknown,
  flag: string,
  usage: string,
  opts: { integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (opts.integer && !Number.isInteger(n)))
    throw new UsageError(
      `--${flag} expects a positive ${opts.integer ? "integer" : "number"}, got '${String(value)}'`,
      usage,
    );
  return n;
}

/**
 * Splits the leading command words (`sandbox`, `create`) from argv, letting global flags come
 * before them (`berth --url X sandbox list`). Returns the words and the remaining argv.
 */
export function splitCommandWords(argv: string[], count: number): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const kept: string[] = [];
  let i = 0;
  while (i < argv.length && words.length < count) {
    const a = argv[i] as string;
    if (a === "--") break;
    if (a === "--url" || a === "--key") {
      kept.push(a, ...(i + 1 < argv.length ? [argv[i + 1] as string] : []));
      i += 2;
    } else if (a.startsWith("-")) {
      kept.push(a);
      i++;
    } else {
      words.push(a);
      i++;
    }
  }
  return { words, rest: [...kept, ...argv.slice(i)] };
}
