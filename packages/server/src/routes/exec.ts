import { SandboxError } from "@berth/core";
import { ExecBody, ExecResult, SandboxParams } from "@berth/core/contract";
import { openEventStream, wantsEventStream } from "../http/sse.js";
import { followExec, OutputBuffer, runExec, startExec } from "../sandboxes/exec.js";
import type { App, ServerContext } from "./context.js";

/** `POST /v1/sandboxes/:id/exec`: a command as the sandbox user (or root), answered whole or streamed as SSE. */
export function execRoutes(app: App, ctx: ServerContext): void {
  app.post(
    "/v1/sandboxes/:id/exec",
    {
      schema: {
        tags: ["exec"],
        params: SandboxParams,
        body: ExecBody,
        response: { 200: ExecResult },
        description: `Runs a command. A timeout kills the command's process group and answers timedOut: true with exitCode 124. With Accept: text/event-stream the output streams as stdout/stderr events ({data}) and ends with an exit event ({exitCode, timedOut, durationMs}).`,
      },
    },
    async (req, reply) => {
      const running = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const { sandbox } = running;
      const b = req.body;
      // root: berth-init refuses it (403 forbidden) in a sandbox not created with root.
      const client = running.client.as(b.user ?? "user");
      const exec = {
        cmd: b.cmd,
        cwd: b.cwd,
        env: ctx.sandboxes.processEnv(sandbox, b.env),
        stdin: b.stdin,
        timeoutMs: b.timeoutMs,
      };
      // The client leaving ends the command: nothing runs on unobserved.
      const gone = new AbortController();
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      if (wantsEventStream(req)) {
        // Start the process before committing to a 200, so a bad cwd is still a clean 4xx.
        const started = await startExec(client, exec);
        const stream = openEventStream(req, reply);
        let seq = 0;
        try {
          const out = await followExec(
            started,
            exec,
            {
              output: (name, bytes) => stream.send(name, { data: bytes.toString("utf8") }, ++seq),
              drained: () => stream.drained(),
            },
            gone.signal,
          );
          ctx.metrics.observeExec(out.durationMs / 1000);
          stream.send(
            "exit",
            { exitCode: out.exitCode, timedOut: out.timedOut, durationMs: out.durationMs },
            ++seq,
          );
        } catch (err) {
          if (!gone.signal.aborted) stream.sendError(err, (e) => new SandboxError(e.message), ++seq);
        }
        stream.end();
        return;
      }
      const limit = ctx.config.execOutputLimitBytes;
      const stdout = new OutputBuffer(limit);
      const stderr = new OutputBuffer(limit);
      const out = await runExec(
        client,
        exec,
        {
          output: (name, bytes) => {
            (name === "stdout" ? stdout : stderr).add(bytes);
            return true;
          },
        },
        gone.signal,
      );
      ctx.metrics.observeExec(out.durationMs / 1000);
      const truncated = stdout.truncated || stderr.truncated;
      return {
        exitCode: out.exitCode,
        stdout: stdout.text(),
        stderr: stderr.text(),
        timedOut: out.timedOut,
        durationMs: out.durationMs,
        ...(truncated ? { truncated } : {}),
      };
    },
  );
}
