import { createServer, type Socket } from "node:net";
import { BerthError, Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command, Context } from "../command.js";

/** A port number argument (0 allowed where `zero` says so). */
function portArg(text: string | undefined, what: string, usage: string, zero = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (zero ? 0 : 1) || n > 65535 || !/^\d+$/.test(text ?? ""))
    throw new UsageError(
      `${what} must be a port number${zero ? " (0: any free port)" : ""}, got '${text}'`,
      usage,
    );
  return n;
}

/** `berth port-forward`. */
export const portForward: Command = {
  summary: "forward a local port to a port in a sandbox",
  usage: `Usage: berth port-forward ID PORT [LOCAL_PORT]

Listens on 127.0.0.1:LOCAL_PORT (default: PORT; 0 picks a free port) and relays each connection
to PORT inside the sandbox over its own WebSocket, as kubectl port-forward does. Any TCP
protocol works, and the port need not be exposed. Prints the address, then runs until Ctrl-C.`,
  options: {},
  async run(args, ctx) {
    const [id, remoteText, localText, extra] = args.positionals;
    if (id === undefined || remoteText === undefined || extra !== undefined || args.rest)
      throw new UsageError("expected ID PORT [LOCAL_PORT]", ctx.usage);
    const port = portArg(remoteText, "PORT", ctx.usage);
    const localPort = localText === undefined ? port : portArg(localText, "LOCAL_PORT", ctx.usage, true);
    const sb = await Sandbox.connect(id, { client: ctx.client() });
    const open = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true }, (local) => {
      open.add(local);
      local.once("close", () => open.delete(local));
      relay(sb, port, local, ctx);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(localPort, "127.0.0.1", () => resolve());
    });
    const address = server.address() as { port: number };
    if (ctx.json) ctx.out(JSON.stringify({ address: `127.0.0.1:${address.port}`, sandboxId: sb.id, port }));
    else ctx.out(`Forwarding from 127.0.0.1:${address.port} -> ${sb.id}:${port} (Ctrl-C stops)`);
    await new Promise<void>((resolve) => {
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, () => resolve());
    });
    server.close();
    for (const s of open) s.destroy();
    return 0;
  },
};

/** Joins one accepted connection to a new connection to the sandbox's port. */
function relay(sb: Sandbox, port: number, local: Socket, ctx: Context): void {
  local.on("error", () => local.destroy());
  local.pause();
  sb.ports.connect(port).then(
    (remote) => {
      remote.on("error", () => local.destroy());
      remote.on("close", () => local.end());
      local.on("close", () => remote.destroy());
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    },
    (err: unknown) => {
      const e = err as BerthError;
      ctx.err(`berth: ${e instanceof BerthError ? `${e.code}: ` : ""}${e.message}`);
      local.destroy();
    },
  );
}
