import { SESSION_STATES } from "@berth/core";
import { type SessionState, Sessions } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";
import { agentAttach, agentShow } from "./agent.js";

/** The states `--state` takes: the contract's, so a new state needs no edit here. */
const STATES: readonly SessionState[] = SESSION_STATES;

/** `berth session list`. */
export const sessionList: Command = {
  summary: "list agent sessions",
  usage: `Usage: berth session list [--state S] [--sandbox ID]

Lists your agent sessions as a table (an array with --json).`,
  options: { state: { type: "string" }, sandbox: { type: "string" } },
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const state = args.values.state as SessionState | undefined;
    if (state !== undefined && !STATES.includes(state))
      throw new UsageError(`--state must be one of ${STATES.join(", ")}, not '${state}'`, ctx.usage);
    const items = await new Sessions(ctx.client()).list({
      ...(state ? { state } : {}),
      ...(args.values.sandbox ? { sandboxId: args.values.sandbox as string } : {}),
    });
    if (ctx.json) {
      ctx.out(JSON.stringify(items, null, 2));
      return 0;
    }
    ctx.out(
      formatTable(
        ["ID", "STATE", "PATTERN", "SANDBOX", "TURNS", "COST", "CREATED"],
        items.map((s) => [
          s.id,
          s.failure ? `${s.state} (${s.failure.code})` : s.state,
          s.pattern,
          s.sandboxId,
          String(s.turns),
          `$${s.cost.totalUsd.toFixed(4)}`,
          s.createdAt,
        ]),
      ),
    );
    return 0;
  },
};

/** `berth session cancel ID...`. */
export const sessionCancel: Command = {
  summary: "end agent sessions (an ephemeral session's sandbox goes too)",
  usage: `Usage: berth session cancel ID...

Ends each session: its agent stops, and an ephemeral session's sandbox is deleted.
To stop only the current turn and keep the session, use 'berth session interrupt'.`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one session ID", ctx.usage);
    const sessions = new Sessions(ctx.client());
    for (const id of args.positionals) {
      await sessions.remove(id);
      if (!ctx.json) ctx.out(id);
    }
    if (ctx.json) ctx.out(JSON.stringify({ cancelled: args.positionals }));
    return 0;
  },
};

/** `berth session interrupt ID`. */
export const sessionInterrupt: Command = {
  summary: "stop an agent session's current turn",
  usage:
    "Usage: berth session interrupt ID\n\nStops the turn under way; the session waits for the next message.",
  options: {},
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra !== undefined) throw new UsageError("expected one session ID", ctx.usage);
    await new Sessions(ctx.client()).interrupt(id);
    if (!ctx.json) ctx.out(id);
    else ctx.out(JSON.stringify({ interrupted: id }));
    return 0;
  },
};

/** `berth session show` (the same as `berth agent show`). */
export const sessionShow: Command = {
  ...agentShow,
  usage: agentShow.usage.replace("agent show", "session show"),
};
/** `berth session attach` (the same as `berth agent attach`). */
export const sessionAttach: Command = {
  ...agentAttach,
  usage: agentAttach.usage.replace("agent attach", "session attach"),
};
