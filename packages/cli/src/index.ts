/** @berth/cli as a library: run a `berth` command line in-process. */
export { COMMANDS, mainUsage, run } from "./cli.js";
