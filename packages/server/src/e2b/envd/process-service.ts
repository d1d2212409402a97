import { InvalidRequestError, type SandboxRecord } from "@berth/core";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { callOf, dropConnectionKey, HOME, sandboxPath } from "./call.js";
import { type Process, type ProcessEventSchema, type ProcessSelector, Signal } from "./gen/process_pb.js";
import type { ProcessOutput, ProcessTable, TrackedProcess } from "./process-table.js";
import { rpc, toConnectError } from "./rpc-errors.js";

/** Whether a sandbox is still running (not being deleted, paused or gone). */
export type SandboxRunning = (sandboxId: string) => Promise<boolean>;

/** A Start or Connect response (the two carry the same event). */
type Event = { event: MessageInitShape<typeof ProcessEventSchema> };

/** The environment a process gets (the sandbox's, the driver's, then the call's). */
export type ProcessEnv = (sandbox: SandboxRecord, extra: Record<string, string>) => Record<string, string>;

/** Output held for a slow client before the process's output is paused (backpressure). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** The Connect event for one output of a process. */
function eventOf(o: ProcessOutput | "keepalive"): Event {
  if (o === "keepalive") return { event: { event: { case: "keepalive", value: {} } } };
  if (o.kind === "end")
    return {
      event: {
        event: {
          case: "end",
          value: { exitCode: o.exitCode, exited: o.exited, status: o.status, error: o.error },
        },
      },
    };
  return { event: { event: { case: "data", value: { output: { case: o.kind, value: o.data } } } } };
}

/**
 * Streams a process's output from now until it ends or the client leaves (the process goes on),
 * with keepalives at the interval the SDK asks for in `Keepalive-Ping-Interval` (seconds).
 */
async function* follow(
  p: TrackedProcess,
  ctx: HandlerContext,
  running: SandboxRunning,
): AsyncGenerator<Event> {
  const queue: (ProcessOutput | "keepalive")[] = [];
  let queued = 0;
  let wake: (() => void) | undefined;
  const push = (o: ProcessOutput | "keepalive") => {
    queue.push(o);
    if (o !== "keepalive" && o.kind !== "end") {
      queued += o.data.length;
      if (queued > MAX_QUEUED_BYTES) p.stream.pause();
    }
    wake?.();
  };
  const unwatch = p.watch(push);
  const onAbort = () => wake?.();
  ctx.signal.addEventListener("abort", onAbort);
  const pingSeconds = Number(ctx.requestHeader.get("keepalive-ping-interval"));
  const ping =
    Number.isFinite(pingSeconds) && pingSeconds > 0
      ? setInterval(() => push("keepalive"), Math.max(1, pingSeconds) * 1000)
      : undefined;
  try {
    for (;;) {
      while (queue.length > 0) {
        const o = queue.shift() as ProcessOutput | "keepalive";
        if (o !== "keepalive" && o.kind !== "end") {
          queued -= o.data.length;
          if (queued <= MAX_QUEUED_BYTES / 4) p.stream.resume();
        }
        if (o !== "keepalive" && o.kind === "end") {
          // A process whose supervisor stream broke, or whose sandbox is going away, has no exit
          // to report: the connection is dropped, as E2B's proxy drops it, so the SDK probes
          // /health (502) and says the sandbox was killed instead of reporting a failed command.
          if (o.status === "error" || !(await running(callOf(ctx).sandbox.id))) {
            ctx.values.get(dropConnectionKey)();
            return;
          }
          yield eventOf(o);
          return;
        }
        yield eventOf(o);
      }
      if (ctx.signal.aborted) return;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = undefined;
    }
  } finally {
    unwatch();
    clearInterval(ping);
    ctx.signal.removeEventListener("abort", onAbort);
    p.stream.resume();
  }
}

/** A pid or tag from a selector (E2B selects a process by either). */
function selectorOf(s: ProcessSelector | undefined): { pid?: number; tag?: string } {
  if (s?.selector.case === "pid") return { pid: s.selector.value };
  if (s?.selector.case === "tag") return { tag: s.selector.value };
  throw new InvalidRequestError("process: give a pid or a tag", { field: "process" });
}

/** E2B's `process.Process` service over the sandbox's supervisor. */
export function processService(
  table: ProcessTable,
  processEnv: ProcessEnv,
  running: SandboxRunning,
): ServiceImpl<typeof Process> {
  return {
    async *start(req, ctx) {
      const { sandbox, client, home } = callOf(ctx);
      const cfg = req.process;
      if (!cfg?.cmd)
        throw toConnectError(new InvalidRequestError("process.cmd is required", { field: "process.cmd" }));
      const size = req.pty?.size;
      const stream = await rpc(() =>
        client.exec({
          cmd: [cfg.cmd, ...cfg.args],
          cwd: cfg.cwd ? sandboxPath(cfg.cwd, home) : home,
          // Root's commands get root's home and name (the call's envs still win).
          env: processEnv(
            sandbox,
            home === HOME ? cfg.envs : { HOME: home, USER: "root", LOGNAME: "root", ...cfg.envs },
          ),
          // Unset means open: what envd did before the field existed.
          stdin: size ? true : (req.stdin ?? true),
          pty: size ? { cols: clampSize(size.cols, 80), rows: clampSize(size.rows, 24) } : undefined,
        }),
      );
      const p = table.add(sandbox.id, stream, {
        config: { cmd: cfg.cmd, args: cfg.args, envs: cfg.envs, cwd: cfg.cwd },
        tag: req.tag,
        pty: size !== undefined,
      });
      // The command's timeout (Connect-Timeout-Ms): past it the process is killed, as envd does.
      const timeoutMs = ctx.timeoutMs();
      if (timeoutMs !== undefined && timeoutMs > 0) p.killAfter(timeoutMs);
      yield { event: { event: { case: "start", value: { pid: p.pid } } } } satisfies Event;
      yield* follow(p, ctx, running);
    },
    async *connect(req, ctx): AsyncGenerator<Event> {
      const { sandbox } = callOf(ctx);
      const p = await rpc(async () => table.find(sandbox.id, selectorOf(req.process)));
      yield { event: { event: { case: "start", value: { pid: p.pid } } } };
      yield* follow(p, ctx, running);
    },
    async list(_req, ctx) {
      const { sandbox } = callOf(ctx);
      return {
        processes: table.list(sandbox.id).map((p) => ({ pid: p.pid, tag: p.tag, config: p.config })),
      };
    },
    async sendInput(req, ctx) {
      const { sandbox } = callOf(ctx);
      await rpc(async () => {
        const p = table.find(sandbox.id, selectorOf(req.process));
        const input = req.input?.input;
        if (input?.case === "stdin" || input?.case === "pty") p.stream.writeStdin(Buffer.from(input.value));
      });
      return {};
    },
    async streamInput(reqs, ctx) {
      const { sandbox } = callOf(ctx);
      let p: TrackedProcess | undefined;
      await rpc(async () => {
        for await (const r of reqs) {
          if (r.event.case === "start") p = table.find(sandbox.id, selectorOf(r.event.value.process));
          else if (r.event.case === "data") {
            const input = r.event.value.input?.input;
            if (!p) throw new InvalidRequestError("send a start event naming the process first");
            if (input?.case === "stdin" || input?.case === "pty")
              p.stream.writeStdin(Buffer.from(input.value));
          }
        }
      });
      return {};
    },
    async closeStdin(req, ctx) {
      const { sandbox } = callOf(ctx);
      await rpc(async () => table.find(sandbox.id, selectorOf(req.process)).stream.endStdin());
      return {};
    },
    async sendSignal(req, ctx) {
      const { sandbox } = callOf(ctx);
      await rpc(async () => {
        if (req.signal !== Signal.SIGKILL && req.signal !== Signal.SIGTERM)
          throw new InvalidRequestError("signal must be SIGKILL or SIGTERM", { field: "signal" });
        table.find(sandbox.id, selectorOf(req.process)).signal(req.signal);
      });
      return {};
    },
    async update(req, ctx) {
      const { sandbox } = callOf(ctx);
      await rpc(async () => {
        const p = table.find(sandbox.id, selectorOf(req.process));
        const size = req.pty?.size;
        if (size && p.pty) p.stream.resize(clampSize(size.cols, 80), clampSize(size.rows, 24));
      });
      return {};
    },
  };
}

function clampSize(v: number, dflt: number): number {
  return Number.isInteger(v) && v >= 1 && v <= 1000 ? v : dflt;
}
