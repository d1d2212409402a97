import { constants } from "node:os";
import { SandboxError } from "@berth/core";
import {
  ListOf,
  ProcessInfo,
  ProcessLogs,
  ProcessParams,
  SandboxParams,
  SignalBody,
  StartProcessBody,
} from "@berth/core/contract";
import type { ExitStatus, ProcessInfo as SupervisedProcess } from "@berth/supervisor";
import { Type as T } from "@sinclair/typebox";
import { lastEventId, openEventStream, wantsEventStream } from "../http/sse.js";
import { exitCodeOf, OutputBuffer } from "../sandboxes/exec.js";
import type { App, ServerContext } from "./context.js";

/** SSE ids of log events are `<stdout bytes>.<stderr bytes>` sent so far: a resume point. */
function parseLogPosition(id: string | undefined): { out: number; err: number } {
  const m = id ? /^(\d{1,15})\.(\d{1,15})$/.exec(id) : null;
  return m ? { out: Number(m[1]), err: Number(m[2]) } : { out: 0, err: 0 };
}

/** Keeps the store's copy of a process current, so its record outlives the sandbox. */
async function recordProcess(ctx: ServerContext, sandboxId: string, p: SupervisedProcess): Promise<void> {
  await ctx.store.upsertProcess({
    sandboxId,
    pid: p.pid,
    cmd: p.cmd,
    cwd: p.cwd,
    state: p.state,
    exitCode: p.state === "exited" ? exitCodeOf(p) : null,
    startedAt: p.startedAt ?? new Date().toISOString(),
    exitedAt: p.exitedAt,
  });
}

/** Background processes: start, list, inspect, signal, and their logs (whole or followed). */
export function processRoutes(app: App, ctx: ServerContext): void {
  const tags = ["processes"];
  app.post(
    "/v1/sandboxes/:id/processes",
    { schema: { tags, params: SandboxParams, body: StartProcessBody, response: { 201: ProcessInfo } } },
    async (req, reply) => {
      const { sandbox, client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const { pid } = await client.spawn({
        cmd: req.body.cmd,
        cwd: req.body.cwd,
        env: ctx.sandboxes.processEnv(sandbox, req.body.env),
        stdin: req.body.stdin,
      });
      const info = await client.process(pid);
      await recordProcess(ctx, req.params.id, info);
      if (req.body.restart === "on-wake")
        await ctx.store.saveWakeProcess({
          sandboxId: req.params.id,
          pid,
          cmd: req.body.cmd,
          cwd: req.body.cwd ?? null,
          env: req.body.env ?? {},
        });
      return reply.status(201).send(info);
    },
  );
  app.get(
    "/v1/sandboxes/:id/processes",
    { schema: { tags, params: SandboxParams, response: { 200: ListOf(ProcessInfo) } } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const items = await client.processes();
      for (const p of items) await recordProcess(ctx, req.params.id, p);
      return { items };
    },
  );
  app.get(
    "/v1/sandboxes/:id/processes/:pid",
    { schema: { tags, params: ProcessParams, response: { 200: ProcessInfo } } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const info = await client.process(Number(req.params.pid));
      await recordProcess(ctx, req.params.id, info);
      return info;
    },
  );
  app.post(
    "/v1/sandboxes/:id/processes/:pid/signal",
    { schema: { tags, params: ProcessParams, body: T.Optional(SignalBody) } },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const name = req.body?.signal ?? "SIGTERM";
      await client.signal(
        Number(req.params.pid),
        (constants.signals as Record<string, number>)[name] as number,
      );
      return reply.status(202).send({ pid: Number(req.params.pid), signal: name });
    },
  );
  app.get(
    "/v1/sandboxes/:id/processes/:pid/logs",
    {
      schema: {
        tags,
        params: ProcessParams,
        response: { 200: ProcessLogs },
        description:
          "Output so far as {pid, stdout, stderr, state, exitCode}; with Accept: text/event-stream, stdout/stderr events ({data}) until the process exits, then exit ({exitCode}). Reconnect with Last-Event-ID to resume.",
      },
    },
    async (req, reply) => {
      const { client } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const pid = Number(req.params.pid);
      const follow = wantsEventStream(req);
      const logs = await client.logs(pid, { follow });
      if (!follow) {
        const limit = ctx.config.execOutputLimitBytes;
        const out = new OutputBuffer(limit);
        const err = new OutputBuffer(limit);
        logs.on("stdout", (b: Buffer) => out.add(b));
        logs.on("stderr", (b: Buffer) => err.add(b));
        const status = await new Promise<ExitStatus>((resolve, reject) => {
          logs.on("exit", resolve);
          logs.on("error", reject);
        });
        const running = status.exitCode === null && status.signal === null;
        return {
          pid,
          stdout: out.text(),
          stderr: err.text(),
          state: running ? ("running" as const) : ("exited" as const),
          exitCode: running ? null : exitCodeOf(status),
          ...(out.truncated || err.truncated ? { truncated: true } : {}),
        };
      }
      const skip = parseLogPosition(lastEventId(req));
      const sent = { out: 0, err: 0 };
      const stream = openEventStream(req, reply);
      stream.onClose(() => logs.close());
      const forward = (kind: "out" | "err") => (b: Buffer) => {
        // On a resumed stream, bytes the client already has are dropped.
        const already = Math.max(0, Math.min(b.length, skip[kind] - sent[kind]));
        sent[kind] += b.length;
        if (already === b.length) return;
        const ok = stream.send(
          kind === "out" ? "stdout" : "stderr",
          { data: b.subarray(already).toString("utf8") },
          `${sent.out}.${sent.err}`,
        );
        if (!ok) {
          logs.pause();
          void stream.drained().then(() => logs.resume());
        }
      };
      logs.on("stdout", forward("out"));
      logs.on("stderr", forward("err"));
      logs.on("exit", (s: ExitStatus) => {
        stream.send("exit", { exitCode: exitCodeOf(s), signal: s.signal }, `${sent.out}.${sent.err}`);
        stream.end();
      });
      logs.on("error", (e: Error) => {
        stream.sendError(e, (x) => new SandboxError(x.message));
        stream.end();
      });
    },
  );
}
