import { Sandbox, type SandboxState } from "@berth/sdk";
import { parseDuration, parseKeyValues, parseNumber, UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

/** `berth sandbox create`. */
export const sandboxCreate: Command = {
  summary: "create a sandbox and print its id",
  usage: `Usage: berth sandbox create [options]

Creates a sandbox and prints its id (the whole sandbox with --json).

Options:
  --memory MiB   memory limit
  --cpus N       CPU limit (may be fractional)
  --disk MiB     writable disk size
  --pids N       process limit
  --timeout D    lifetime (30s, 10m, 2h; bare numbers are seconds)
  --template T   template name
  --env K=V      environment variable (repeatable)
  --label K=V    label (repeatable)
  --egress MODE  network egress: none (default), allowlist or open
  --allow DEST   allowed hostname, *.wildcard, IPv4 or CIDR (repeatable; implies allowlist)
  --root         root inside, in the sandbox's own user namespace (never host root); commands
                 still run as 'user' unless they ask for root (\`berth exec --root\`)`,
  options: {
    egress: { type: "string" },
    allow: { type: "string", multiple: true },
    memory: { type: "string" },
    cpus: { type: "string" },
    disk: { type: "string" },
    pids: { type: "string" },
    timeout: { type: "string" },
    template: { type: "string" },
    env: { type: "string", multiple: true },
    label: { type: "string", multiple: true },
    root: { type: "boolean" },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0 || args.rest)
      throw new UsageError(`unexpected argument '${args.positionals[0] ?? "--"}'`, ctx.usage);
    const v = args.values;
    const resources = {
      memoryMiB: parseNumber(v.memory, "memory", ctx.usage, { integer: true }),
      cpus: parseNumber(v.cpus, "cpus", ctx.usage),
      diskMiB: parseNumber(v.disk, "disk", ctx.usage, { integer: true }),
      pids: parseNumber(v.pids, "pids", ctx.usage, { integer: true }),
    };
    const allow = (v.allow as string[] | undefined) ?? [];
    const egress = (v.egress as string | undefined) ?? (allow.length > 0 ? "allowlist" : undefined);
    if (egress !== undefined && !["none", "allowlist", "open"].includes(egress))
      throw new UsageError(`--egress must be none, allowlist or open, not '${egress}'`, ctx.usage);
    const sb = await Sandbox.create(
      {
        template: v.template as string | undefined,
        network: egress ? { egress: egress as "none" | "allowlist" | "open", allow } : undefined,
        resources: Object.values(resources).some((x) => x !== undefined) ? resources : undefined,
        timeoutSeconds: parseDuration(v.timeout, "timeout", ctx.usage, { integer: true }),
        env: v.env ? parseKeyValues(v.env, "env", ctx.usage) : undefined,
        labels: v.label ? parseKeyValues(v.label, "label", ctx.usage) : undefined,
        ...(v.root ? { root: true } : {}),
      },
      { client: ctx.client() },
    );
    ctx.out(ctx.json ? JSON.stringify(sb.info, null, 2) : sb.id);
    return 0;
  },
};

/** `berth sandbox list`. */
export const sandboxList: Command = {
  summary: "list sandboxes",
  usage: `Usage: berth sandbox list [--state S] [--label K=V]...

Lists your sandboxes as a table (an array with --json).`,
  options: { state: { type: "string" }, label: { type: "string", multiple: true } },
  async run(args, ctx) {
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument '${args.positionals[0]}'`, ctx.usage);
    const items = await Sandbox.list(
      {
        state: args.values.state as SandboxState | undefined,
        labels: parseKeyValues(args.values.label, "label", ctx.usage),
      },
      { client: ctx.client() },
    );
    if (ctx.json) {
      ctx.out(JSON.stringify(items, null, 2));
      return 0;
    }
    const rows = items.map((s) => [
      s.id,
      s.state,
      s.template,
      String(s.resources?.cpus ?? ""),
      s.resources ? `${s.resources.memoryMiB}MiB` : "",
      s.createdAt,
      Object.entries(s.labels ?? {})
        .map(([k, val]) => `${k}=${val}`)
        .join(","),
    ]);
    ctx.out(formatTable(["ID", "STATE", "TEMPLATE", "CPUS", "MEMORY", "CREATED", "LABELS"], rows));
    return 0;
  },
};

/** `berth sandbox get`. */
export const sandboxGet: Command = {
  summary: "show one sandbox",
  usage: `Usage: berth sandbox get ID

Prints the sandbox as JSON.`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError("expected exactly one sandbox ID", ctx.usage);
    const sb = await Sandbox.connect(args.positionals[0] as string, { client: ctx.client() });
    ctx.out(JSON.stringify(sb.info, null, 2));
    return 0;
  },
};

/** `berth sandbox rm`. */
export const sandboxRemove: Command = {
  summary: "delete sandboxes",
  usage: `Usage: berth sandbox rm [--force] ID...

Deletes each sandbox (deleting one that is already gone is not an error). A sandbox that live
agent sessions use is refused (in_use) unless --force, which ends those sessions (sandbox_lost).`,
  options: { force: { type: "boolean" } },
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one sandbox ID", ctx.usage);
    const client = ctx.client();
    const force = args.values.force === true ? "?force=true" : "";
    for (const id of args.positionals) {
      await client.json("DELETE", `/v1/sandboxes/${encodeURIComponent(id)}${force}`);
      if (!ctx.json) ctx.out(id);
    }
    if (ctx.json) ctx.out(JSON.stringify({ deleted: args.positionals }));
    return 0;
  },
};
