import { BerthError } from "@berth/sdk";
import { GLOBAL_USAGE, parseCommandArgs, splitCommandWords, UsageError } from "./args.js";
import { type Command, makeContext } from "./command.js";
import {
  agentAttach,
  agentFork,
  agentPermit,
  agentRun,
  agentShow,
  agentWorkspace,
} from "./commands/agent.js";
import { e2bEnv } from "./commands/e2b.js";
import { sandboxExec } from "./commands/exec.js";
import { filesList, filesMkdir, filesRemove, filesWatch } from "./commands/file-ops.js";
import { filesCopy } from "./commands/files.js";
import { sandboxFork } from "./commands/fork.js";
import { keysCreate, keysList, keysRemove } from "./commands/keys.js";
import {
  sandboxExtend,
  sandboxHibernate,
  sandboxPause,
  sandboxResume,
  sandboxWake,
} from "./commands/lifecycle.js";
import {
  managedAgentsAdd,
  managedAgentsList,
  managedAgentsRemove,
  managedAgentsShow,
} from "./commands/managed-agents.js";
import { portForward } from "./commands/port-forward.js";
import { portsExpose, portsList, portsRemove } from "./commands/ports.js";
import {
  processesKill,
  processesList,
  processesLogs,
  processesStart,
  processesStdin,
} from "./commands/processes.js";
import { sandboxCreate, sandboxGet, sandboxList, sandboxRemove } from "./commands/sandbox.js";
import { serve } from "./commands/serve.js";
import {
  sessionAttach,
  sessionCancel,
  sessionInterrupt,
  sessionList,
  sessionShow,
} from "./commands/sessions.js";
import { shell } from "./commands/shell.js";
import { snapshotCreate, snapshotList, snapshotRemove } from "./commands/snapshots.js";
import { templateBuild, templateImport, templateList, templateRemove } from "./commands/templates.js";
import { tenantsBudget, tenantsList, tenantsShow } from "./commands/tenants.js";
import { usage } from "./commands/usage.js";
import { volumeCreate, volumeList, volumeRemove } from "./commands/volumes.js";
import { didYouMean } from "./suggest.js";

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
    pause: sandboxPause,
    resume: sandboxResume,
    hibernate: sandboxHibernate,
    wake: sandboxWake,
    extend: sandboxExtend,
    fork: sandboxFork,
  },
  files: { cp: filesCopy, ls: filesList, rm: filesRemove, mkdir: filesMkdir, watch: filesWatch },
  processes: {
    start: processesStart,
    ls: processesList,
    logs: processesLogs,
    stdin: processesStdin,
    kill: processesKill,
  },
  snapshot: { create: snapshotCreate, list: snapshotList, rm: snapshotRemove },
  volume: { create: volumeCreate, list: volumeList, rm: volumeRemove },
  shell,
  template: { import: templateImport, build: templateBuild, list: templateList, rm: templateRemove },
  ports: { expose: portsExpose, list: portsList, rm: portsRemove },
  "port-forward": portForward,
  keys: { create: keysCreate, list: keysList, rm: keysRemove },
  tenants: { list: tenantsList, show: tenantsShow, budget: tenantsBudget },
  agent: {
    run: agentRun,
    show: agentShow,
    attach: agentAttach,
    permit: agentPermit,
    fork: agentFork,
    workspace: agentWorkspace,
  },
  session: {
    list: sessionList,
    show: sessionShow,
    attach: sessionAttach,
    cancel: sessionCancel,
    interrupt: sessionInterrupt,
  },
  usage,
  "managed-agents": {
    add: managedAgentsAdd,
    ls: managedAgentsList,
    show: managedAgentsShow,
    rm: managedAgentsRemove,
  },
  e2b: { env: e2bEnv },
};

const isCommand = (c: Command | Group): c is Command => typeof (c as Command).run === "function";

/** The top-level usage text. */
export function mainUsage(): string {
  const lines: string[] = [];
  for (const [name, c] of Object.entries(COMMANDS)) {
    if (isCommand(c)) lines.push(`  ${name.padEnd(18)} ${c.summary}`);
    else
      for (const [sub, s] of Object.entries(c)) lines.push(`  ${`${name} ${sub}`.padEnd(18)} ${s.summary}`);
  }
  return `Usage: berth COMMAND [options]

Commands:
${lines.join("\n")}

Run 'berth COMMAND --help' for a command's options.

${GLOBAL_USAGE}`;
}

function groupUsage(name: string, group: Group): string {
  const lines = Object.entries(group).map(([sub, s]) => `  ${sub.padEnd(10)} ${s.summary}`);
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
    if (!entry)
      throw new UsageError(
        `unknown command '${name}'${didYouMean(name, Object.keys(COMMANDS))}`,
        mainUsage(),
      );
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
      if (!found)
        throw new UsageError(
          `unknown subcommand '${name} ${sub}'${didYouMean(sub, Object.keys(entry), `${name} `)}`,
          usage,
        );
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
      process.stderr.write(`berth: ${err.message}\n${err.usage ? `\n${err.usage}\n` : ""}`);
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
