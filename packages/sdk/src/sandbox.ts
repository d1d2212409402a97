import type { SandboxState, SandboxView } from "@berth/core";
import type { PatchSandboxBody, SandboxMetrics as SandboxMetricsSchema } from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import { BerthClient, type CallOptions } from "./client.js";
import type { ConnectionOptions } from "./config.js";
import { Files } from "./files.js";
import { Ports } from "./ports.js";
import { Processes } from "./processes.js";
import { Pty, type PtyOptions } from "./pty.js";
import type { SnapshotInfo } from "./snapshots.js";
import type { ExecOptions, ExecResult, SandboxCreateOptions, SandboxListFilter } from "./types.js";

/** Connection options, or an existing client to share, and the call's abort signal. */
export type SandboxConnectOptions = ConnectionOptions & { client?: BerthClient } & CallOptions;

/** What `sb.update` can change on a live sandbox: network, labels, timeout, idle policy. */
export type SandboxUpdate = PatchSandboxBody;

/** Live usage of a running sandbox and what it cost so far. */
export type SandboxMetrics = Static<typeof SandboxMetricsSchema>;

/**
 * One lifecycle event of a sandbox (`state`, and whatever else the server logs), with the
 * event's id for resuming.
 */
export interface SandboxEvent {
  id: string | undefined;
  event: string;
  data: { state?: SandboxState; at: string; [k: string]: unknown };
}

function clientOf(opts: SandboxConnectOptions): BerthClient {
  return opts.client ?? new BerthClient(opts);
}

/** A handle on one sandbox: run commands, move files, manage processes, open a terminal. */
export class Sandbox {
  /** File operations inside this sandbox. */
  readonly files: Files;
  /** Background processes of this sandbox. */
  readonly processes: Processes;
  /** Exposed ports and port-forward connections of this sandbox. */
  readonly ports: Ports;

  private constructor(
    readonly client: BerthClient,
    private view: SandboxView,
  ) {
    this.files = new Files(client, view.id);
    this.processes = new Processes(client, view.id);
    this.ports = new Ports(client, view.id);
  }

  /** Creates a sandbox; resolves once the server answers (running, ready for exec). */
  static async create(spec: SandboxCreateOptions = {}, opts: SandboxConnectOptions = {}): Promise<Sandbox> {
    const client = clientOf(opts);
    return new Sandbox(
      client,
      await client.json<SandboxView>("POST", "/v1/sandboxes", { json: spec, signal: opts.signal }),
    );
  }

  /** A handle on an existing sandbox; throws NotFoundError for an unknown id. */
  static async connect(id: string, opts: SandboxConnectOptions = {}): Promise<Sandbox> {
    const client = clientOf(opts);
    return new Sandbox(
      client,
      await client.json<SandboxView>("GET", `/v1/sandboxes/${encodeURIComponent(id)}`, {
        signal: opts.signal,
      }),
    );
  }

  /** The caller's sandboxes, following pagination to the end. */
  static async list(
    filter: SandboxListFilter = {},
    opts: SandboxConnectOptions = {},
  ): Promise<SandboxView[]> {
    const client = clientOf(opts);
    const label = Object.entries(filter.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    const items: SandboxView[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (;;) {
      const page = await client.json<{ items: SandboxView[]; nextCursor?: string | null }>(
        "GET",
        "/v1/sandboxes",
        {
          query: { state: filter.state, label, cursor },
          signal: opts.signal,
        },
      );
      items.push(...page.items);
      // A server that ignores `cursor` must not loop us forever.
      if (!page.nextCursor || seen.has(page.nextCursor)) return items;
      seen.add(page.nextCursor);
      cursor = page.nextCursor;
    }
  }

  get id(): string {
    return this.view.id;
  }
  get state(): SandboxState {
    return this.view.state;
  }
  /** The sandbox as last fetched (see `refresh`). */
  get info(): SandboxView {
    return this.view;
  }
  get labels(): Record<string, string> {
    return this.view.labels;
  }
  get createdAt(): string {
    return this.view.createdAt;
  }
  get expiresAt(): string | null {
    return this.view.expiresAt;
  }

  /** Fetches the current state from the server. */
  async refresh(o: CallOptions = {}): Promise<SandboxView> {
    this.view = await this.client.json<SandboxView>("GET", this.path(), { signal: o.signal });
    return this.view;
  }

  /** Changes labels, network policy, timeout or idle policy of the live sandbox (`PATCH`). */
  async update(patch: SandboxUpdate, o: CallOptions = {}): Promise<SandboxView> {
    this.view = await this.client.json<SandboxView>("PATCH", this.path(), { json: patch, signal: o.signal });
    return this.view;
  }

  /** Freezes its processes (memory kept, no CPU); `resume` thaws them. */
  pause(o: CallOptions = {}): Promise<SandboxView> {
    return this.lifecycle("pause", o);
  }

  /** Thaws a paused sandbox. */
  resume(o: CallOptions = {}): Promise<SandboxView> {
    return this.lifecycle("resume", o);
  }

  /** Stops it, keeping its files (no memory, no CPU); `wake` starts it again from them. */
  hibernate(o: CallOptions = {}): Promise<SandboxView> {
    return this.lifecycle("hibernate", o);
  }

  /** Starts a hibernated sandbox again with its files. */
  wake(o: CallOptions = {}): Promise<SandboxView> {
    return this.lifecycle("wake", o);
  }

  /** Live CPU, memory, disk, network and cost so far (a running sandbox only). */
  metrics(o: CallOptions = {}): Promise<SandboxMetrics> {
    return this.client.json("GET", this.path("/metrics"), { signal: o.signal });
  }

  /** Captures its files as a snapshot; `Sandbox.create({ fromSnapshot: id })` starts from it. */
  snapshot(opts: { name?: string } & CallOptions = {}): Promise<SnapshotInfo> {
    return this.client.json("POST", this.path("/snapshots"), {
      json: opts.name !== undefined ? { name: opts.name } : {},
      signal: opts.signal,
    });
  }

  /**
   * Copies of its files, env, resources and settings (not its memory: processes running in it are
   * not in the copies), as handles. All `count` copies are made or none. On the local driver a
   * copy shares the source's disk blocks until either side writes.
   */
  async fork(
    opts: { count?: number; labels?: Record<string, string>; timeoutSeconds?: number } & CallOptions = {},
  ): Promise<Sandbox[]> {
    const { signal, ...body } = opts;
    const r = await this.client.json<{ items: SandboxView[] }>("POST", this.path("/fork"), {
      json: body,
      signal,
    });
    return r.items.map((v) => new Sandbox(this.client, v));
  }

  /**
   * Its lifecycle events from the start (or after `lastEventId`), then live until it is deleted
   * or fails, or `signal` aborts; a dropped connection resumes where it left off.
   */
  async *events(o: { lastEventId?: string } & CallOptions = {}): AsyncGenerator<SandboxEvent> {
    const isEnd = (ev: { event: string; data: string }) => {
      if (ev.event !== "state") return false;
      const state = (JSON.parse(ev.data) as { state?: SandboxState }).state;
      return state === "deleted" || state === "failed";
    };
    for await (const ev of this.client.stream("GET", this.path("/events"), {
      reconnect: true,
      lastEventId: o.lastEventId,
      isLast: isEnd,
      signal: o.signal,
    }))
      yield { id: ev.id, event: ev.event, data: JSON.parse(ev.data) };
  }

  private async lifecycle(
    what: "pause" | "resume" | "hibernate" | "wake",
    o: CallOptions,
  ): Promise<SandboxView> {
    this.view = await this.client.json<SandboxView>("POST", this.path(`/${what}`), { signal: o.signal });
    return this.view;
  }

  /**
   * Deletes the sandbox (idempotent). One that live agent sessions use is a ConflictError
   * (`in_use`) unless `force`; forced, those sessions end with `sandbox_lost`.
   */
  async delete(o: { force?: boolean } & CallOptions = {}): Promise<void> {
    await this.client.json("DELETE", this.path(o.force ? "?force=true" : ""), { signal: o.signal });
  }

  /** Lets the sandbox live `seconds` longer. */
  async extend(seconds: number, o: CallOptions = {}): Promise<void> {
    this.view =
      (await this.client.json<SandboxView | undefined>("POST", this.path("/extend"), {
        json: { seconds },
        signal: o.signal,
      })) ?? this.view;
  }

  /**
   * Runs a command to completion. A string runs under `sh -c`; an array runs as is. With
   * `onStdout`/`onStderr` the output is delivered live (SSE) and also collected in the result.
   */
  async exec(cmd: string | string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const body = {
      cmd: typeof cmd === "string" ? ["sh", "-c", cmd] : cmd,
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs,
      user: opts.user,
    };
    if (!opts.onStdout && !opts.onStderr)
      return this.client.json<ExecResult>("POST", this.path("/exec"), { json: body, signal: opts.signal });
    const started = Date.now();
    const result: ExecResult = { exitCode: -1, stdout: "", stderr: "", timedOut: false, durationMs: 0 };
    for await (const ev of this.client.stream("POST", this.path("/exec"), {
      json: body,
      signal: opts.signal,
      isLast: (e) => e.event === "exit",
    })) {
      const data = JSON.parse(ev.data) as Partial<ExecResult> & { data?: string };
      if (ev.event === "stdout") {
        result.stdout += data.data ?? "";
        opts.onStdout?.(data.data ?? "");
      } else if (ev.event === "stderr") {
        result.stderr += data.data ?? "";
        opts.onStderr?.(data.data ?? "");
      } else if (ev.event === "exit") {
        result.exitCode = data.exitCode ?? -1;
        result.timedOut = data.timedOut ?? false;
        result.durationMs = data.durationMs ?? Date.now() - started;
        if (data.truncated) result.truncated = true;
      }
    }
    return result;
  }

  /** Opens an interactive terminal. */
  pty(opts: PtyOptions = {}): Promise<Pty> {
    return Pty.open(this.client, this.id, opts);
  }

  private path(suffix = ""): string {
    return `/v1/sandboxes/${encodeURIComponent(this.id)}${suffix}`;
  }
}
