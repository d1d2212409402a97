import { type TemplateFormat, Templates } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

const FORMATS = ["rootfs", "docker", "oci"];

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** `berth template import NAME ARCHIVE`. */
export const templateImport: Command = {
  summary: "import a template from a tar, docker save or OCI archive",
  usage: `Usage: berth template import NAME ARCHIVE [--format rootfs|docker|oci]

Imports template NAME (needs an admin key) from ARCHIVE: a root filesystem tar (rootfs, the
default), a 'docker save' archive (docker) or an OCI image layout packed as a tar (oci). gzip,
zstd and xz are detected. Upload progress goes to stderr.`,
  options: { format: { type: "string" } },
  async run(args, ctx) {
    const [name, file, extra] = args.positionals;
    if (!name || !file) throw new UsageError("expected NAME and ARCHIVE", ctx.usage);
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, ctx.usage);
    const format = (args.values.format as string | undefined) ?? "rootfs";
    if (!FORMATS.includes(format))
      throw new UsageError(`--format must be one of ${FORMATS.join(", ")}`, ctx.usage);
    let shown = -1;
    const t = await new Templates(ctx.client()).import(name, file, {
      format: format as TemplateFormat,
      onProgress: (sent, total) => {
        const pct = total ? Math.floor((sent / total) * 100) : 0;
        if (ctx.json || pct === shown || pct % 10 !== 0) return;
        shown = pct;
        ctx.err(`uploaded ${mib(sent)}${total ? ` of ${mib(total)} (${pct}%)` : ""}`);
      },
    });
    if (!ctx.json) ctx.err("unpacked");
    ctx.out(ctx.json ? JSON.stringify(t, null, 2) : `${t.name}\t${mib(t.sizeBytes)}\t${t.source}`);
    return 0;
  },
};

/** `berth template build NAME --from T --run SCRIPT`. */
export const templateBuild: Command = {
  summary: "build a template by running a script in a sandbox",
  usage: `Usage: berth template build NAME --run SCRIPT [--from TEMPLATE] [--timeout SECONDS]

Builds template NAME (needs an admin key): SCRIPT runs with 'sh -c' in a new sandbox of TEMPLATE
(default 'default'), and the files it leaves become the template. The script's output and the
build's progress go to stderr; the template is printed when done.`,
  options: { from: { type: "string" }, run: { type: "string" }, timeout: { type: "string" } },
  async run(args, ctx) {
    const [name, extra] = args.positionals;
    if (!name) throw new UsageError("expected NAME", ctx.usage);
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, ctx.usage);
    const script = args.values.run as string | undefined;
    if (!script) throw new UsageError("--run is required", ctx.usage);
    const timeout = args.values.timeout as string | undefined;
    if (timeout !== undefined && !/^[1-9][0-9]*$/.test(timeout))
      throw new UsageError("--timeout must be a whole number of seconds", ctx.usage);
    const t = await new Templates(ctx.client()).build(name, {
      from: args.values.from as string | undefined,
      run: script,
      timeoutSeconds: timeout ? Number(timeout) : undefined,
      onProgress: (p) => {
        if (p.kind === "status") ctx.err(`==> ${p.message}`);
        else process.stderr.write(p.data);
      },
    });
    ctx.out(ctx.json ? JSON.stringify(t, null, 2) : `${t.name}\t${mib(t.sizeBytes)}\t${t.source}`);
    return 0;
  },
};

/** `berth template list`. */
export const templateList: Command = {
  summary: "list templates",
  usage: "Usage: berth template list\n\nLists templates with their size, creation time and source.",
  options: {},
  async run(_args, ctx) {
    const items = await new Templates(ctx.client()).list();
    if (ctx.json) ctx.out(JSON.stringify(items, null, 2));
    else
      ctx.out(
        formatTable(
          ["NAME", "SIZE", "CREATED", "SOURCE"],
          items.map((t) => [t.name, mib(t.sizeBytes), t.createdAt, t.source]),
        ),
      );
    return 0;
  },
};

/** `berth template rm`. */
export const templateRemove: Command = {
  summary: "delete templates",
  usage:
    "Usage: berth template rm NAME...\n\nDeletes each template (needs an admin key; refused while a sandbox uses it).",
  options: {},
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError("expected at least one NAME", ctx.usage);
    const templates = new Templates(ctx.client());
    for (const name of args.positionals) await templates.remove(name);
    return 0;
  },
};
