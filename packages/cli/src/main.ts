#!/usr/bin/env node
/** The `berth` command. */
import { run } from "./cli.js";

const code = await run(process.argv.slice(2));
// Let buffered output reach its pipe before exiting; open sockets must not keep us alive.
await new Promise<void>((r) => process.stdout.write("", () => r()));
await new Promise<void>((r) => process.stderr.write("", () => r()));
process.exit(code);
