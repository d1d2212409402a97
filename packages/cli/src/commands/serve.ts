import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, loadConfig } from "@berth/core";
import { UsageError } from "../args.js";
import { startBanner } from "../banner.js";
import type { Command } from "../command.js";

/** What `berth serve` needs from @berth/server (loaded only by this command). */
interface ServerModule {
  startServer(
    config: ReturnType<typeof loadConfig>,
  ): Promise<{ url: string; previewUrl: string; close(): Promise<void> }>;
}

/** The optional JSON settings file named by BERTH_CONFIG (keys are setting names, e.g. `port`). */
function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`BERTH_CONFIG: cannot read '${path}': ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(
      `BERTH_CONFIG: '${path}' is not a JSON object of settings: ${(err as Error).message}`,
    );
  }
}

/** `berth serve`. */
export const serve: Command = {
  summary: "run the Berth server",
  usage: `Usage: berth serve

Runs the API server with settings from BERTH_* environment variables (BERTH_PORT,
BERTH_HOST, BERTH_DATA_DIR, BERTH_DATABASE_URL, ...) and the optional JSON file named by
BERTH_CONFIG (env vars win). On first start it writes an admin key to
$BERTH_DATA_DIR/admin-key. Stops cleanly on SIGINT or SIGTERM.`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const config = loadConfig(process.env, readConfigFile(process.env.BERTH_CONFIG));
    // Imported here so the other commands start fast and work without the server's deps.
    const spec = "@berth/server";
    const { startServer } = (await import(spec)) as ServerModule;
    const server = await startServer(config);
    ctx.err(
      startBanner({
        url: server.url,
        previewUrl: server.previewUrl,
        adminKeyPath: join(resolve(config.dataDir), "admin-key"),
        hasModelKey: Boolean(config.anthropicApiKey),
      }),
    );
    if (ctx.json) ctx.out(JSON.stringify({ url: server.url, previewUrl: server.previewUrl }));
    await new Promise<void>((done) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          ctx.err(`berth: ${signal} again, exiting now`);
          process.exit(130);
        }
        stopping = true;
        ctx.err(`berth: ${signal}, shutting down`);
        server.close().then(done, (err: unknown) => {
          ctx.err(`berth: shutdown failed: ${(err as Error).message}`);
          process.exitCode = 1;
          done();
        });
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  },
};
