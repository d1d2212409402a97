import type { SandboxView } from "@berth/sdk";
import { parseDuration, UsageError } from "../args.js";
import type { Command } from "../command.js";

type Change = "pause" | "resume" | "hibernate" | "wake";

const WHAT: Record<Change, { summary: string; detail: string }> = {
  pause: {
    summary: "freeze sandboxes' processes (memory kept)",
    detail: "Freezes every process of each sandbox (the cgroup freezer); memory and files are kept.",
  },
  resume: { summary: "thaw paused sandboxes", detail: "Lets each paused sandbox's processes run again." },
  hibernate: {
    summary: "stop sandboxes, keeping their files",
    detail: "Stops each sandbox and keeps its writable layer: no memory or CPU is used until it wakes.",
  },
  wake: {
    summary: "start hibernated sandboxes again",
    detail: "Starts each hibernated sandbox again from its kept files.",
  },
};

/** `berth sandbox pause|resume|hibernate|wake ID...`: one lifecycle change for each sandbox. */
function lifecycleCommand(change: Change): Command {
  return {
    summary: WHAT[change].summary,
    usage: `Usage: berth sandbox ${change} ID...

${WHAT[change].detail} Prints each sandbox's id and new state (the sandboxes with --json).`,
    options: {},
    async run(args, ctx) {
      if (args.positionals.length === 0) throw new UsageError("expected at least one sandbox ID", ctx.usage);
      const done: SandboxView[] = [];
      for (const id of args.positionals) {
        const sb = await ctx
          .client()
          .json<SandboxView>("POST", `/v1/sandboxes/${encodeURIComponent(id)}/${change}`);
        done.push(sb);
        if (!ctx.json) ctx.out(`${sb.id}\t${sb.state}`);
      }
      if (ctx.json) ctx.out(JSON.stringify(done, null, 2));
      return 0;
    },
  };
}

/** `berth sandbox pause`. */
export const sandboxPause = lifecycleCommand("pause");
/** `berth sandbox resume`. */
export const sandboxResume = lifecycleCommand("resume");
/** `berth sandbox hibernate`. */
export const sandboxHibernate = lifecycleCommand("hibernate");
/** `berth sandbox wake`. */
export const sandboxWake = lifecycleCommand("wake");

/** `berth sandbox extend ID DURATION`. */
export const sandboxExtend: Command = {
  summary: "give a sandbox more time before its timeout",
  usage: `Usage: berth sandbox extend ID DURATION

Moves the sandbox's timeout DURATION later (30s, 10m, 2h; a bare number is seconds).`,
  options: {},
  async run(args, ctx) {
    const [id, duration, extra] = args.positionals;
    if (!id || !duration || extra !== undefined) throw new UsageError("expected ID and DURATION", ctx.usage);
    const seconds = parseDuration(duration, "DURATION", ctx.usage, { integer: true }) as number;
    const sb = await ctx
      .client()
      .json<SandboxView>("POST", `/v1/sandboxes/${encodeURIComponent(id)}/extend`, {
        json: { seconds },
      });
    ctx.out(ctx.json ? JSON.stringify(sb, null, 2) : `${sb.id}\t${sb.expiresAt ?? "no timeout"}`);
    return 0;
  },
};
