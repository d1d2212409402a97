import { BerthError } from "@berth/sdk";
import { GLOBAL_USAGE, parseCommandArgs, splitCommandWords, UsageError } from "./args.js";
import { type Command, makeContext } from "./command.js";
import { agentAttach, agentRun, agentShow } from "./commands/agent.js";
import { e2bEnv } from "./commands/e2b.js";
import { sandboxExec } from "./commands/exec.js";
import { filesCopy } from "./commands/files.js";
import { keysCreate, keysList, keysRemove } from "./commands/keys.js";
import { portForward } from "./commands/port-forward.js";
import { portsExpose, portsList, portsRemove } from "./commands/ports.js";
import { sandboxCreate, sandboxGet, sandboxList, sandboxRemove } from "./commands/sandbox.js";
import { serve } from "./commands/serve.js";
import { shell } from "./commands/shell.js";
import { templateBuild, templateImport, templateList, templateRemove } from "./commands/templates.js";
import { tenantsBudget, tenantsList, tenantsShow } from "./commands/tenants.js";

type Group = Record<string, Command>;

/** Every command: top-level ones and groups of subcommands. */
export const COMMANDS: Record<string, Command | Group> = {
  serve,
  sandbox: {
    create: sandboxCreate,
    list: sandboxList,
    get: sandboxGet,
    rm: sandboxRemove,
    exec: sandboxExec,
  },
  files: { cp: filesCopy },
  shell,
  template: { import: templateImport, build: templateBuild, list: templateList, rm: templateRemove },
  ports: { expose: portsExpose, list: portsList, rm: portsRemove },
  "port-forward": portForward,
  keys: { create: keysCreate, list: keysList, rm: keysRemove },
  tenants: { list: tenantsList, show: tenantsShow, budget: tenantsBudget },
  agent: { run: agentRun, show: agentShow, attach: agentAttach },
  e2b: { env: e2bEnv },
};

const isCommand = (c: Command | Group): c is Command => typeof (c as Command).run === "function";

/** The top-level usage text. */
export function mainUsage(): string {
  const lines: string[] = [];
  for (const [name, c] of Object.entries(COMMANDS)) {
    if (isCommand(c)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
    else
      for (const [sub, s] of Object.entries(c)) lines.push(`  ${`${name} ${sub}`.padEnd(16)} ${s.summary}`);
  }
  return `Usage: berth COMMAND [options]

Commands:
${lines.join("\n")}

Run 'berth COMMAND --help' for a command's options.

${GLOBAL_USAGE}`;
}

function groupUsage(name: string, group: Group): string {
  const lines = Object.entries(group).map(([sub, s]) => `  ${sub.padEnd(8)} ${s.summary}`);
  return `Usage: berth ${name} SUBCOMMAND [options]\n\nSubcommands:\n${lines.join("\n")}\n\n${GLOBAL_USAGE}`;
}

const wantsHelp = (argv: string[]) => {
  const dash = argv.indexOf("--");
  return (dash < 0 ? argv : argv.slice(0, dash)).some((a) => a === "--help" || a === "-h");
};

/**
 * Runs one `berth` invocation and resolves with its exit code: 0 ok, 1 an API or runtime
 * error (`berth: <code>: <message>` on stderr), 2 a usage error (usage on stderr).
 */
export async function run(argv: string[]): Promise<number> {
  try {
    const top = splitCommandWords(argv, 1);
    const name = top.words[0];
    if (name === undefined) {
      if (wantsHelp(argv)) {
        process.stdout.write(`${mainUsage()}\n`);
        return 0;
      }
      throw new UsageError("missing command", mainUsage());
    }
    const entry = COMMANDS[name];
    if (!entry) throw new UsageError(`unknown command '${name}'`, mainUsage());
    let command: Command;
    let rest = top.rest;
    if (isCommand(entry)) command = entry;
    else {
      const second = splitCommandWords(top.rest, 1);
      const sub = second.words[0];
      const usage = groupUsage(name, entry);
      if (sub === undefined) {
        if (wantsHelp(top.rest)) {
          process.stdout.write(`${usage}\n`);
          return 0;
        }
        throw new UsageError(`missing subcommand of '${name}'`, usage);
      }
      const found = entry[sub];
      if (!found) throw new UsageError(`unknown subcommand '${name} ${sub}'`, usage);
      command = found;
      rest = second.rest;
    }
    const usage = `${command.usage}\n\n${GLOBAL_USAGE}`;
    const args = parseCommandArgs(rest, command.options, usage);
    if (args.values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    return await command.run(args, makeContext(args, usage));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`berth: ${err.message}\n\n${err.usage}\n`);
      return 2;
    }
    if (err instanceof BerthError) {
      process.stderr.write(`berth: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`berth: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
