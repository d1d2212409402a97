import { NotFoundError } from "@berth/core";
import type { ExitStatus, ProcessStream } from "@berth/supervisor";

/** What a process was started with, as E2B's List reports it. */
export interface ProcessConfigView {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd?: string;
}

/** One thing that happened to a process, in the order it happened. */
export type ProcessOutput =
  | { kind: "stdout" | "stderr" | "pty"; data: Buffer }
  | { kind: "end"; exitCode: number; exited: boolean; status: string; error?: string };

/** A process started through the E2B data plane, and who is watching its output. */
export class TrackedProcess {
  private readonly watchers = new Set<(o: ProcessOutput) => void>();
  private killTimer: NodeJS.Timeout | undefined;
  /** Set once the process has ended. */
  ended: Extract<ProcessOutput, { kind: "end" }> | undefined;

  constructor(
    readonly pid: number,
    readonly config: ProcessConfigView,
    readonly tag: string | undefined,
    readonly pty: boolean,
    readonly stream: ProcessStream,
    onEnd: () => void,
  ) {
    const out = (kind: "stdout" | "stderr") => (data: Buffer) =>
      this.emit({ kind: pty ? "pty" : kind, data });
    stream.on("stdout", out("stdout"));
    stream.on("stderr", out("stderr"));
    stream.on("exit", (s: ExitStatus) => {
      this.finish(endOf(s));
      onEnd();
    });
    stream.on("error", (e: Error) => {
      this.finish({ kind: "end", exitCode: -1, exited: false, status: "error", error: e.message });
      onEnd();
    });
  }

  /** Calls `fn` with every later output and the end; returns the unsubscribe function. */
  watch(fn: (o: ProcessOutput) => void): () => void {
    if (this.ended) {
      fn(this.ended);
      return () => {};
    }
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Kills the process (SIGKILL) after `ms`: E2B's command timeout. */
  killAfter(ms: number): void {
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.signal(9), ms);
    this.killTimer.unref();
  }

  /** Signals the process group; a process that already ended is left alone. */
  signal(n: number): void {
    if (!this.ended) this.stream.kill(n);
  }

  private emit(o: ProcessOutput): void {
    for (const w of this.watchers) w(o);
  }

  private finish(end: Extract<ProcessOutput, { kind: "end" }>): void {
    if (this.ended) return;
    clearTimeout(this.killTimer);
    this.ended = end;
    this.emit(end);
    this.watchers.clear();
  }
}

/** E2B's end event for an exit status: a signal is exit code -1, "signal: <name>". */
function endOf(s: ExitStatus): Extract<ProcessOutput, { kind: "end" }> {
  if (s.signal !== null)
    return {
      kind: "end",
      exitCode: -1,
      exited: false,
      status: `signal: ${s.signal.replace(/^SIG/, "").toLowerCase()}`,
    };
  const code = s.exitCode ?? 0;
  return { kind: "end", exitCode: code, exited: true, status: `exit status ${code}` };
}

/**
 * The processes started through the E2B data plane, per sandbox. They outlive the request that
 * started them (E2B's model: a client may disconnect and reconnect by pid or tag); each is held
 * by its supervisor connection, which berth-init ends the process with when it closes.
 */
export class ProcessTable {
  private readonly bySandbox = new Map<string, Map<number, TrackedProcess>>();

  /** Tracks a started process until it ends. */
  add(
    sandboxId: string,
    stream: ProcessStream,
    o: { config: ProcessConfigView; tag?: string; pty: boolean },
  ): TrackedProcess {
    let procs = this.bySandbox.get(sandboxId);
    if (!procs) {
      procs = new Map();
      this.bySandbox.set(sandboxId, procs);
    }
    const table = procs;
    const p = new TrackedProcess(stream.pid, o.config, o.tag, o.pty, stream, () => {
      table.delete(stream.pid);
      if (table.size === 0 && this.bySandbox.get(sandboxId) === table) this.bySandbox.delete(sandboxId);
    });
    table.set(stream.pid, p);
    return p;
  }

  /** The running processes of a sandbox. */
  list(sandboxId: string): TrackedProcess[] {
    return [...(this.bySandbox.get(sandboxId)?.values() ?? [])];
  }

  /** The running process chosen by pid or tag; NotFoundError when there is none. */
  find(sandboxId: string, sel: { pid?: number; tag?: string }): TrackedProcess {
    const procs = this.list(sandboxId);
    const p =
      sel.pid !== undefined ? procs.find((x) => x.pid === sel.pid) : procs.find((x) => x.tag === sel.tag);
    if (!p) throw new NotFoundError("process", sel.pid !== undefined ? String(sel.pid) : (sel.tag ?? ""));
    return p;
  }

  /** Closes every tracked process (server shutdown): berth-init ends them. */
  closeAll(): void {
    for (const procs of this.bySandbox.values()) for (const p of procs.values()) p.stream.close();
    this.bySandbox.clear();
  }
}
