import { BerthClient } from "@berth/sdk";
import type { OptionSpec, ParsedArgs } from "./args.js";

/** One `berth` command: its options, usage text and what it does. */
export interface Command {
  /** One line for the command list. */
  summary: string;
  /** Full usage text (without the global options, which main appends). */
  usage: string;
  options: OptionSpec;
  /** Runs the command; resolves with the process exit code. */
  run(args: ParsedArgs, ctx: Context): Promise<number>;
}

/** What a command needs from its surroundings. */
export interface Context {
  /** The API client from `--url`/`--key` or the environment (created on first use). */
  client(): BerthClient;
  /** Whether `--json` was given. */
  json: boolean;
  /** The usage text of the running command (for UsageError). */
  usage: string;
  out(text: string): void;
  err(text: string): void;
}

/** The context of one invocation. */
export function makeContext(args: ParsedArgs, usage: string): Context {
  let client: BerthClient | undefined;
  return {
    client: () => {
      client ??= new BerthClient({
        apiUrl: args.values.url as string | undefined,
        apiKey: args.values.key as string | undefined,
      });
      return client;
    },
    json: args.values.json === true,
    usage,
    out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  };
}
