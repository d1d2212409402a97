/** Commands, background processes, files and the terminal on the wire. */
import { type Static, Type as T } from "@sinclair/typebox";
import { Env, OneOf, SandboxPath } from "./common.js";

/** `POST /v1/sandboxes/:id/exec`. */
export const ExecBody = T.Object(
  {
    cmd: T.Array(T.String({ maxLength: 131072 }), { minItems: 1, maxItems: 4096 }),
    cwd: T.Optional(SandboxPath),
    env: T.Optional(Env),
    stdin: T.Optional(T.String({ maxLength: 8 * 1024 * 1024 })),
    timeoutMs: T.Optional(T.Integer({ minimum: 1, maximum: 86_400_000 })),
    user: T.Optional(
      OneOf(["user", "root"] as const, {
        description: "`user` (uid 1000, the default) or `root` (only in a sandbox created with root: true)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ExecBody = Static<typeof ExecBody>;

/** The answer of a finished command. */
export const ExecResult = T.Object({
  exitCode: T.Integer(),
  stdout: T.String(),
  stderr: T.String(),
  timedOut: T.Boolean(),
  durationMs: T.Number(),
  truncated: T.Optional(T.Boolean()),
});
export type ExecResult = Static<typeof ExecResult>;

/** Signals a client may send to a background process. */
export const SIGNALS = [
  "SIGTERM",
  "SIGKILL",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGSTOP",
  "SIGCONT",
] as const;

/** `POST /v1/sandboxes/:id/processes`. */
export const StartProcessBody = T.Object(
  {
    cmd: T.Array(T.String({ maxLength: 131072 }), { minItems: 1, maxItems: 4096 }),
    cwd: T.Optional(SandboxPath),
    env: T.Optional(Env),
    stdin: T.Optional(
      T.Boolean({
        description:
          "Keep the process's stdin open for POST .../processes/:pid/stdin (default false: stdin is /dev/null)",
      }),
    ),
    restart: T.Optional(
      OneOf(["no", "on-wake"], {
        description:
          "on-wake: started again each time the sandbox wakes from hibernation (if it ran until then)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type StartProcessBody = Static<typeof StartProcessBody>;

/** A background process started through the API. */
export const ProcessInfo = T.Object({
  pid: T.Integer(),
  cmd: T.Array(T.String()),
  cwd: T.Union([T.String(), T.Null()]),
  state: OneOf(["running", "exited"]),
  exitCode: T.Union([T.Integer(), T.Null()]),
  signal: T.Union([T.String(), T.Null()]),
  startedAt: T.Union([T.String(), T.Null()]),
  exitedAt: T.Union([T.String(), T.Null()]),
});
export type ProcessInfo = Static<typeof ProcessInfo>;

/** Collected output of a background process (`GET .../processes/:pid/logs` without SSE). */
export const ProcessLogs = T.Object({
  pid: T.Integer(),
  stdout: T.String(),
  stderr: T.String(),
  state: OneOf(["running", "exited"]),
  exitCode: T.Union([T.Integer(), T.Null()]),
  truncated: T.Optional(T.Boolean()),
});
export type ProcessLogs = Static<typeof ProcessLogs>;

/** `:id/:pid` of the process routes. */
export const ProcessParams = T.Object({
  id: T.String({ maxLength: 64 }),
  pid: T.String({ pattern: "^[0-9]{1,7}$" }),
});
/** Most bytes one `POST .../processes/:pid/stdin` may write. */
export const MAX_STDIN_WRITE_BYTES = 1024 * 1024;
/** `POST .../processes/:pid/stdin?close=`: with close=true, stdin is closed after the body is written. */
export const StdinQuery = T.Object(
  { close: T.Optional(OneOf(["true", "false"])) },
  { additionalProperties: false },
);
/** The JSON form of a stdin write (any other content type is written as raw bytes). */
export const StdinJsonBody = T.Object(
  {
    data: T.String({ maxLength: 2 * MAX_STDIN_WRITE_BYTES }),
    encoding: T.Optional(OneOf(["utf8", "base64"])),
  },
  { additionalProperties: false },
);
export type StdinJsonBody = Static<typeof StdinJsonBody>;
/** The answer to a stdin write: bytes written, and whether stdin is now closed. */
export const StdinResult = T.Object({ pid: T.Integer(), written: T.Integer(), closed: T.Boolean() });
export type StdinResult = Static<typeof StdinResult>;

/** `POST .../processes/:pid/kill`. */
export const SignalBody = T.Object({ signal: T.Optional(OneOf(SIGNALS)) }, { additionalProperties: false });

/** `?path=` of the file routes. */
export const PathQuery = T.Object({ path: SandboxPath }, { additionalProperties: false });
/** `DELETE .../files?path=&recursive=`. */
export const RemoveQuery = T.Object(
  { path: SandboxPath, recursive: T.Optional(OneOf(["true", "false"])) },
  { additionalProperties: false },
);
/** `GET .../files/watch?path=&recursive=`. */
export const WatchQuery = RemoveQuery;
/** `POST .../files/mkdir`. */
export const PathBody = T.Object({ path: SandboxPath }, { additionalProperties: false });
/** `POST .../files/move`. */
export const MoveBody = T.Object({ from: SandboxPath, to: SandboxPath }, { additionalProperties: false });
/** The answer naming a path that was made or changed. */
export const PathResult = T.Object({ path: T.String() });
/** The answer to a file write. */
export const WrittenFile = T.Object({ path: T.String(), size: T.Integer() });

/** One entry of a directory listing. */
export const FileEntry = T.Object({
  name: T.String(),
  type: OneOf(["file", "dir", "symlink", "other"]),
  size: T.Integer(),
  mode: T.Integer(),
  mtime: T.String(),
});
export type FileEntry = Static<typeof FileEntry>;
/** `GET .../files/list`. */
export const FileList = T.Object({ entries: T.Array(FileEntry) });

/** `GET .../pty?cols=&rows=`. */
export const PtyQuery = T.Object(
  {
    cols: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    rows: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);
