import type { BerthClient, CallOptions } from "./client.js";
import type { ProcessInfo, ProcessLogs, StdinResult } from "./types.js";

/** Options of `processes.logs`. */
export interface LogsOptions {
  /** Stream until the process exits (reconnecting without loss) instead of a snapshot. */
  follow?: boolean;
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  signal?: AbortSignal;
}

/** Background processes of one sandbox (`sb.processes`). */
export class Processes {
  constructor(
    private readonly client: BerthClient,
    private readonly sandboxId: string,
  ) {}

  private path(suffix = ""): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/processes${suffix}`;
  }

  /**
   * Starts a process that outlives the call; a string runs under `sh -c`. With `stdin: true`
   * its stdin stays open for `writeStdin`/`closeStdin` (else it reads /dev/null).
   */
  start(
    opts: {
      cmd: string | string[];
      cwd?: string;
      env?: Record<string, string>;
      stdin?: boolean;
    } & CallOptions,
  ): Promise<ProcessInfo> {
    const cmd = typeof opts.cmd === "string" ? ["sh", "-c", opts.cmd] : opts.cmd;
    return this.client.json("POST", this.path(), {
      json: { cmd, cwd: opts.cwd, env: opts.env, ...(opts.stdin ? { stdin: true } : {}) },
      signal: opts.signal,
    });
  }

  /**
   * Writes to the stdin of a process started with `stdin: true` (at most 1 MiB per call),
   * then with `close` closes it. Resolves once the process's stdin pipe took every byte.
   * ConflictError when it was started without stdin, has exited, or its stdin is closed.
   */
  writeStdin(
    pid: number,
    data: string | Uint8Array,
    o: { close?: boolean } & CallOptions = {},
  ): Promise<StdinResult> {
    const body = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.client.json("POST", this.path(`/${pid}/stdin`), {
      query: { close: o.close ? "true" : undefined },
      body,
      signal: o.signal,
    });
  }

  /** Closes the stdin of a process started with `stdin: true` (it reads end of file). */
  closeStdin(pid: number, o: CallOptions = {}): Promise<StdinResult> {
    return this.writeStdin(pid, new Uint8Array(0), { close: true, signal: o.signal });
  }

  /** Every process started through the API in this sandbox. */
  async list(o: CallOptions = {}): Promise<ProcessInfo[]> {
    const res = await this.client.json<ProcessInfo[] | { items: ProcessInfo[] }>("GET", this.path(), {
      signal: o.signal,
    });
    return Array.isArray(res) ? res : res.items;
  }

  /** One process. */
  get(pid: number, o: CallOptions = {}): Promise<ProcessInfo> {
    return this.client.json("GET", this.path(`/${pid}`), { signal: o.signal });
  }

  /** Sends a signal (default SIGTERM). */
  async signal(pid: number, signal = "SIGTERM", o: CallOptions = {}): Promise<void> {
    await this.client.json("POST", this.path(`/${pid}/signal`), { json: { signal }, signal: o.signal });
  }

  /**
   * The output so far, or with `follow` everything until the process exits, delivered to the
   * callbacks as it comes.
   */
  async logs(pid: number, opts: LogsOptions = {}): Promise<ProcessLogs> {
    if (!opts.follow) {
      const logs = await this.client.json<ProcessLogs>("GET", this.path(`/${pid}/logs`), {
        signal: opts.signal,
      });
      if (logs.stdout) opts.onStdout?.(logs.stdout);
      if (logs.stderr) opts.onStderr?.(logs.stderr);
      return logs;
    }
    const out: ProcessLogs = { pid, stdout: "", stderr: "", state: "running", exitCode: null };
    for await (const ev of this.client.stream("GET", this.path(`/${pid}/logs`), {
      reconnect: true,
      isLast: (e) => e.event === "exit",
      signal: opts.signal,
    })) {
      const data = JSON.parse(ev.data) as { data?: string; exitCode?: number | null };
      if (ev.event === "stdout") {
        out.stdout += data.data ?? "";
        opts.onStdout?.(data.data ?? "");
      } else if (ev.event === "stderr") {
        out.stderr += data.data ?? "";
        opts.onStderr?.(data.data ?? "");
      } else if (ev.event === "exit") {
        out.state = "exited";
        out.exitCode = data.exitCode ?? null;
      }
    }
    return out;
  }
}
