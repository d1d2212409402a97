import { resolveApiUrl } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

/** An E2B-format key (`e2b_` + 40 hex): used as it is. */
const E2B_KEY = /^e2b_[0-9a-f]{40}$/;

/** Quotes a value for a POSIX shell line. */
const shellQuote = (v: string) => (/^[A-Za-z0-9_:/.@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, "'\\''")}'`);

/** `berth e2b env`. */
export const e2bEnv: Command = {
  summary: "print the E2B_* variables that point the e2b SDKs at this server",
  usage: `Usage: berth e2b env [--url URL] [--key KEY]

Prints a line to paste into a shell (or an .env file with --json) so that code written for the
e2b SDKs runs against this Berth server unchanged:

  export E2B_API_URL=<url>/e2b E2B_SANDBOX_URL=<url>/e2b/envd E2B_API_KEY=e2b_...

With an E2B-format --key (e2b_ + 40 hex) that key is used; otherwise a new E2B-format key is made
for the tenant of the Berth key in use (it is shown only in this output).`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const given = args.values.key as string | undefined;
    const url = resolveApiUrl(args.values.url as string | undefined);
    const key =
      given && E2B_KEY.test(given)
        ? given
        : (await ctx.client().json<{ key: string }>("POST", "/v1/e2b/keys")).key;
    const vars = { E2B_API_URL: `${url}/e2b`, E2B_SANDBOX_URL: `${url}/e2b/envd`, E2B_API_KEY: key };
    if (ctx.json) ctx.out(JSON.stringify(vars, null, 2));
    else
      ctx.out(
        `export ${Object.entries(vars)
          .map(([k, v]) => `${k}=${shellQuote(v)}`)
          .join(" ")}`,
      );
    return 0;
  },
};
