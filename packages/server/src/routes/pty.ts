import { PtyQuery, SandboxParams } from "@berth/core/contract";
import type { ExitStatus } from "@berth/supervisor";
import type { WebSocket } from "ws";
import { exitCodeOf } from "../sandboxes/exec.js";
import type { App, ServerContext } from "./context.js";

const clamp = (v: unknown, dflt: number) => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : dflt;
};

/**
 * `GET /v1/sandboxes/:id/pty`: a login shell on a terminal over a WebSocket. Binary frames are
 * terminal bytes both ways; text frames are control messages (`{"resize": {cols, rows}}` in,
 * `{"exit": {"exitCode": N}}` out before the server closes).
 */
export function ptyRoutes(app: App, ctx: ServerContext): void {
  app.get(
    "/v1/sandboxes/:id/pty",
    { websocket: true, schema: { tags: ["pty"], params: SandboxParams, querystring: PtyQuery } },
    async (socket: WebSocket, req) => {
      const { id } = req.params as { id: string };
      const q = req.query as { cols?: string; rows?: string };
      // Terminal bytes that arrive while the shell starts are kept, not lost.
      const early: [Buffer, boolean][] = [];
      const onEarly = (data: Buffer, isBinary: boolean) => early.push([data, isBinary]);
      socket.on("message", onEarly);
      let proc: Awaited<ReturnType<ReturnType<ServerContext["sandboxes"]["client"]>["exec"]>>;
      try {
        const { sandbox, client } = await ctx.sandboxes.running(req.caller.tenantId, id);
        proc = await client.exec({
          cmd: ["bash", "-l"],
          cwd: "/workspace",
          env: ctx.sandboxes.processEnv(sandbox, { TERM: "xterm-256color" }),
          pty: { cols: clamp(q.cols, 80), rows: clamp(q.rows, 24) },
        });
      } catch (err) {
        socket.close(1011, (err as Error).message.slice(0, 120));
        return;
      }
      socket.off("message", onEarly);
      // An open terminal keeps the sandbox busy for idle policies, typed into or not.
      socket.once("close", ctx.sandboxes.activity.hold(id));
      const input = (data: Buffer, isBinary: boolean) => {
        ctx.sandboxes.touch(id);
        if (isBinary) {
          proc.writeStdin(data);
          return;
        }
        try {
          const msg = JSON.parse(data.toString("utf8")) as { resize?: { cols?: unknown; rows?: unknown } };
          if (msg.resize) proc.resize(clamp(msg.resize.cols, 80), clamp(msg.resize.rows, 24));
        } catch {
          // Not a control message: treat it as typed text.
          proc.writeStdin(data);
        }
      };
      for (const [b, isBinary] of early) input(b, isBinary);
      socket.on("message", input);
      const out = (b: Buffer) => {
        socket.send(b, { binary: true });
        if (socket.bufferedAmount > 1 << 20) {
          proc.pause();
          const wait = setInterval(() => {
            if (socket.bufferedAmount < 1 << 18 || socket.readyState !== socket.OPEN) {
              clearInterval(wait);
              proc.resume();
            }
          }, 10);
        }
      };
      proc.on("stdout", out);
      proc.on("stderr", out);
      proc.on("exit", (s: ExitStatus) => {
        socket.send(JSON.stringify({ exit: { exitCode: exitCodeOf(s) } }));
        socket.close(1000);
      });
      proc.on("error", () => socket.close(1011, "the terminal's connection to the sandbox broke"));
      // Closing the socket ends the shell (berth-init kills its process group).
      socket.on("close", () => proc.close());
    },
  );
}
