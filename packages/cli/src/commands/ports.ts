import { Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatTable } from "../table.js";

/** PORT argument: 1..65535. */
function portOf(text: string | undefined, usage: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text ?? "") || n < 1 || n > 65535)
    throw new UsageError(`PORT must be a port number (1-65535), got '${text}'`, usage);
  return n;
}

/** `berth ports expose`. */
export const portsExpose: Command = {
  summary: "serve a sandbox's port through the proxy",
  usage: `Usage: berth ports expose ID PORT [--public]

Prints the port's URL and, unless --public, its token (send it as the X-Berth-Token header or
?token=; shown only once). Exposing a port again gives it a new token and voids the old one.`,
  options: { public: { type: "boolean" } },
  async run(args, ctx) {
    const [id, portText, extra] = args.positionals;
    if (id === undefined || extra !== undefined) throw new UsageError("expected ID PORT", ctx.usage);
    const port = portOf(portText, ctx.usage);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    const p = await sb.ports.expose(port, { public: args.values.public === true });
    if (ctx.json) ctx.out(JSON.stringify(p, null, 2));
    else {
      ctx.out(p.url);
      if (p.token) ctx.out(`token: ${p.token}`);
      ctx.err(
        p.token ? "the token is shown only once: store it now" : "public: anyone with the URL can use it",
      );
    }
    return 0;
  },
};

/** `berth ports list`. */
export const portsList: Command = {
  summary: "list a sandbox's exposed ports",
  usage:
    "Usage: berth ports list ID\n\nLists the exposed ports of sandbox ID (tokens are never shown again).",
  options: {},
  async run(args, ctx) {
    const [id, extra] = args.positionals;
    if (id === undefined || extra !== undefined) throw new UsageError("expected ID", ctx.usage);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    const ports = await sb.ports.list();
    if (ctx.json) ctx.out(JSON.stringify(ports, null, 2));
    else
      ctx.out(
        formatTable(
          ["PORT", "PUBLIC", "URL", "CREATED"],
          ports.map((p) => [String(p.port), p.public ? "yes" : "no", p.url, p.createdAt]),
        ),
      );
    return 0;
  },
};

/** `berth ports rm`. */
export const portsRemove: Command = {
  summary: "stop serving a sandbox's port (its token stops working)",
  usage: "Usage: berth ports rm ID PORT...\n\nUnexposes each port; its URL answers 404 from then on.",
  options: {},
  async run(args, ctx) {
    const [id, ...ports] = args.positionals;
    if (id === undefined || ports.length === 0) throw new UsageError("expected ID PORT...", ctx.usage);
    const numbers = ports.map((p) => portOf(p, ctx.usage));
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    for (const port of numbers) await sb.ports.remove(port);
    return 0;
  },
};
