import { readFileSync } from "node:fs";
import { type ManagedAgentInfo, ManagedAgents } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

function table(items: ManagedAgentInfo[]): string {
  return formatTable(
    ["ID", "ENVIRONMENT", "STATE", "MAX", "RUNNING", "COMPLETED", "FAILED", "STOPPED"],
    items.map((i) => [
      i.id,
      i.environmentId,
      i.state,
      String(i.maxConcurrent),
      String(i.counts.running),
      String(i.counts.completed),
      String(i.counts.failed),
      String(i.counts.stopped),
    ]),
  );
}

/** `berth managed-agents add`. */
export const managedAgentsAdd: Command = {
  summary: "run a Claude Managed Agents self-hosted environment's work in sandboxes",
  usage: `Usage: berth managed-agents add --environment ENV_ID [--base-url URL] [--max-concurrent N]
         [--template NAME] [--egress none|open] [--keep] [--webhook]

Berth polls the environment's work queue and runs every work item (a session's tool calls) with
the official environment worker in a sandbox of its own. The environment key is read from
ANTHROPIC_ENVIRONMENT_KEY, or from standard input with --key-stdin (never from the command line,
where other users could see it). It is stored encrypted and never shown again.

--webhook: claim work when Anthropic's session.status_run_started webhook arrives (at
POST /webhooks/managed-agents/ID) instead of long-polling; its signing secret is read from
ANTHROPIC_WEBHOOK_SECRET.`,
  options: {
    environment: { type: "string" },
    "base-url": { type: "string" },
    "max-concurrent": { type: "string" },
    template: { type: "string" },
    egress: { type: "string" },
    keep: { type: "boolean" },
    "key-stdin": { type: "boolean" },
    webhook: { type: "boolean" },
  },
  async run(args, ctx) {
    const environmentId = args.values.environment as string | undefined;
    if (!environmentId) throw new UsageError("--environment is required", ctx.usage);
    const key = args.values["key-stdin"]
      ? readFileSync(0, "utf8").trim()
      : (process.env.ANTHROPIC_ENVIRONMENT_KEY ?? "").trim();
    if (!key)
      throw new UsageError(
        "set ANTHROPIC_ENVIRONMENT_KEY or pass the key on stdin with --key-stdin",
        ctx.usage,
      );
    const webhookSecret = args.values.webhook
      ? (process.env.ANTHROPIC_WEBHOOK_SECRET ?? "").trim()
      : undefined;
    if (webhookSecret === "") throw new UsageError("--webhook needs ANTHROPIC_WEBHOOK_SECRET", ctx.usage);
    const max = args.values["max-concurrent"] as string | undefined;
    const maxConcurrent = max === undefined ? undefined : Number(max);
    if (maxConcurrent !== undefined && !(Number.isInteger(maxConcurrent) && maxConcurrent >= 1))
      throw new UsageError(`--max-concurrent must be a whole number of 1 or more, got '${max}'`, ctx.usage);
    const egress = args.values.egress as string | undefined;
    if (egress !== undefined && egress !== "none" && egress !== "open")
      throw new UsageError(`--egress must be none or open, got '${egress}'`, ctx.usage);
    const sandbox = {
      ...(args.values.template ? { template: args.values.template as string } : {}),
      ...(egress ? { network: { egress: egress as "none" | "open" } } : {}),
      ...(args.values.keep ? { keep: true } : {}),
    };
    const info = await new ManagedAgents(ctx.client()).add({
      environmentId,
      environmentKey: key,
      ...(args.values["base-url"] ? { baseUrl: args.values["base-url"] as string } : {}),
      ...(maxConcurrent !== undefined ? { maxConcurrent } : {}),
      ...(Object.keys(sandbox).length ? { sandbox } : {}),
      ...(webhookSecret ? { webhookSecret } : {}),
    });
    ctx.out(ctx.json ? JSON.stringify(info, null, 2) : info.id);
    return 0;
  },
};

/** `berth managed-agents ls`. */
export const managedAgentsList: Command = {
  summary: "list Managed Agents integrations",
  usage: "Usage: berth managed-agents ls\n\nLists the integrations with their item counts.",
  options: {},
  async run(_args, ctx) {
    const items = await new ManagedAgents(ctx.client()).list();
    ctx.out(ctx.json ? JSON.stringify(items, null, 2) : table(items));
    return 0;
  },
};

/** `berth managed-agents show`. */
export const managedAgentsShow: Command = {
  summary: "show a Managed Agents integration and its latest work items",
  usage: "Usage: berth managed-agents show ID\n\nShows the integration and its latest work items.",
  options: {},
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra) throw new UsageError("expected one ID", ctx.usage);
    const info = await new ManagedAgents(ctx.client()).get(id);
    if (ctx.json) {
      ctx.out(JSON.stringify(info, null, 2));
      return 0;
    }
    ctx.out(table([info]));
    if (info.failure) ctx.out(`failure: ${info.failure}`);
    ctx.out(
      formatTable(
        ["WORK", "SESSION", "SANDBOX", "STATE", "STARTED", "ENDED"],
        (info.items ?? []).map((i) => [
          i.workId,
          i.sessionId,
          i.sandboxId ?? "-",
          i.state,
          i.startedAt,
          i.endedAt ?? "-",
        ]),
      ),
    );
    return 0;
  },
};

/** `berth managed-agents rm`. */
export const managedAgentsRemove: Command = {
  summary: "stop a Managed Agents integration",
  usage: `Usage: berth managed-agents rm ID [--force]

Stops claiming work. Running items end on their own (with --force: they are stopped now and
their sandboxes deleted).`,
  options: { force: { type: "boolean" } },
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (!id || extra) throw new UsageError("expected one ID", ctx.usage);
    const info = await new ManagedAgents(ctx.client()).remove(id, { force: args.values.force === true });
    ctx.out(ctx.json ? JSON.stringify(info, null, 2) : `${info.id} ${info.state}`);
    return 0;
  },
};
