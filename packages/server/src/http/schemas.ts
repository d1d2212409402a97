/**
 * Request and response schemas of the v1 API (served as `GET /openapi.json`). They validate requests,
 * give the handlers their types and produce /openapi.json: one source of truth.
 */
import { SANDBOX_STATES, SESSION_FAILURE_CODES, SESSION_PATTERNS, SESSION_STATES } from "@berth/core";
import { type Static, Type as T } from "@sinclair/typebox";

/** Longest span a request may give in seconds (larger values are refused, not overflowed). */
const TEN_YEARS_S = 315_360_000;

const ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$";
const LABEL_KEY = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$";

export const SandboxId = T.String({ pattern: "^sb[a-z0-9]{16}$", description: "Sandbox id" });
export const SandboxParams = T.Object({ id: T.String({ maxLength: 64 }) });

/**
 * Text without control characters (C0 and DEL): NUL cannot reach the kernel in a path or an
 * environment, and the others only garble logs and listings. See PATTERN_MEANINGS.
 */
export const NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$";
/** The same, for environment values, where tab, newline and carriage return are meaningful. */
export const NO_CONTROL_BUT_SPACE = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$";

/** An absolute path inside the sandbox. */
export const SandboxPath = T.String({
  minLength: 1,
  maxLength: 4096,
  pattern: "^/[^\\u0000-\\u001f\\u007f]*$",
});

export const Env = T.Record(
  T.String({ pattern: ENV_NAME, maxLength: 256 }),
  T.String({ maxLength: 32768, pattern: NO_CONTROL_BUT_SPACE }),
  { maxProperties: 256, additionalProperties: false },
);
export const Labels = T.Record(
  T.String({ pattern: LABEL_KEY }),
  T.String({ maxLength: 256, pattern: NO_CONTROL }),
  { maxProperties: 64, additionalProperties: false },
);

/** What a pattern failure of the schemas above means, in words (else Ajv's regex is shown). */
export const PATTERN_MEANINGS: Record<string, string> = {
  [NO_CONTROL]: "must not contain control characters",
  [NO_CONTROL_BUT_SPACE]:
    "must not contain control characters (tab, newline and carriage return are allowed)",
  [SandboxPath.pattern as string]: "must be an absolute path without control characters",
  [ENV_NAME]: "must be a variable name (letters, digits and _, not starting with a digit)",
};

export const Resources = T.Object(
  {
    cpus: T.Optional(T.Number({ minimum: 0.01, maximum: 1024 })),
    memoryMiB: T.Optional(T.Integer({ minimum: 16 })),
    diskMiB: T.Optional(T.Integer({ minimum: 16 })),
    pids: T.Optional(T.Integer({ minimum: 8 })),
  },
  { additionalProperties: false },
);

export const Network = T.Object(
  {
    egress: T.Optional(T.Union([T.Literal("none"), T.Literal("allowlist"), T.Literal("open")])),
    allow: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 253 }), { maxItems: 256 })),
  },
  { additionalProperties: false },
);

export const Idle = T.Object(
  {
    afterSeconds: T.Integer({ minimum: 1, maximum: TEN_YEARS_S }),
    action: T.Union([T.Literal("pause"), T.Literal("hibernate"), T.Literal("delete")]),
  },
  { additionalProperties: false },
);

export const CreateSandboxBody = T.Object(
  {
    template: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
    resources: T.Optional(Resources),
    env: T.Optional(Env),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
    idle: T.Optional(T.Union([Idle, T.Null()])),
    network: T.Optional(Network),
    labels: T.Optional(Labels),
    fromSnapshot: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
    volumes: T.Optional(
      T.Array(
        T.Object(
          { name: T.String({ minLength: 1 }), mountPath: SandboxPath },
          { additionalProperties: false },
        ),
        { maxItems: 16 },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CreateSandboxBody = Static<typeof CreateSandboxBody>;

export const PatchSandboxBody = T.Object(
  {
    network: T.Optional(Network),
    labels: T.Optional(Labels),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
    idle: T.Optional(T.Union([Idle, T.Null()])),
  },
  { additionalProperties: false },
);
export type PatchSandboxBody = Static<typeof PatchSandboxBody>;

export const Sandbox = T.Object({
  id: T.String(),
  state: T.Union(SANDBOX_STATES.map((s) => T.Literal(s))),
  template: T.String(),
  resources: T.Object({ cpus: T.Number(), memoryMiB: T.Integer(), diskMiB: T.Integer(), pids: T.Integer() }),
  network: T.Object({ egress: T.String(), allow: T.Array(T.String()) }),
  labels: T.Record(T.String(), T.String()),
  env: T.Record(T.String(), T.String()),
  idle: T.Union([T.Object({ afterSeconds: T.Integer(), action: T.String() }), T.Null()]),
  timeoutSeconds: T.Union([T.Integer(), T.Null()]),
  createdAt: T.String({ format: "date-time" }),
  expiresAt: T.Union([T.String({ format: "date-time" }), T.Null()]),
  lastActivityAt: T.String({ format: "date-time" }),
  failureReason: T.Optional(T.String()),
  volumes: T.Array(T.Object({ name: T.String(), mountPath: T.String() })),
});

export const ListSandboxesQuery = T.Object(
  {
    state: T.Optional(T.Union(SANDBOX_STATES.map((s) => T.Literal(s)))),
    label: T.Optional(
      T.Union([T.String({ pattern: "^[^=]+=.*$" }), T.Array(T.String({ pattern: "^[^=]+=.*$" }))]),
    ),
    limit: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    cursor: T.Optional(T.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const ExecBody = T.Object(
  {
    cmd: T.Array(T.String({ maxLength: 131072 }), { minItems: 1, maxItems: 4096 }),
    cwd: T.Optional(SandboxPath),
    env: T.Optional(Env),
    stdin: T.Optional(T.String({ maxLength: 8 * 1024 * 1024 })),
    timeoutMs: T.Optional(T.Integer({ minimum: 1, maximum: 86_400_000 })),
    user: T.Optional(T.Literal("user", { description: "Only the sandbox user (uid 1000) today" })),
  },
  { additionalProperties: false },
);
export type ExecBody = Static<typeof ExecBody>;

export const ExecResult = T.Object({
  exitCode: T.Integer(),
  stdout: T.String(),
  stderr: T.String(),
  timedOut: T.Boolean(),
  durationMs: T.Number(),
  truncated: T.Optional(T.Boolean()),
});

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

export const StartProcessBody = T.Object(
  {
    cmd: T.Array(T.String({ maxLength: 131072 }), { minItems: 1, maxItems: 4096 }),
    cwd: T.Optional(SandboxPath),
    env: T.Optional(Env),
    restart: T.Optional(
      T.Union([T.Literal("no"), T.Literal("on-wake")], {
        description:
          "on-wake: started again each time the sandbox wakes from hibernation (if it ran until then)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type StartProcessBody = Static<typeof StartProcessBody>;

export const ProcessInfo = T.Object({
  pid: T.Integer(),
  cmd: T.Array(T.String()),
  cwd: T.Union([T.String(), T.Null()]),
  state: T.Union([T.Literal("running"), T.Literal("exited")]),
  exitCode: T.Union([T.Integer(), T.Null()]),
  signal: T.Union([T.String(), T.Null()]),
  startedAt: T.Union([T.String(), T.Null()]),
  exitedAt: T.Union([T.String(), T.Null()]),
});

export const ProcessParams = T.Object({
  id: T.String({ maxLength: 64 }),
  pid: T.String({ pattern: "^[0-9]{1,7}$" }),
});
export const SignalBody = T.Object(
  { signal: T.Optional(T.Union(SIGNALS.map((s) => T.Literal(s)))) },
  { additionalProperties: false },
);

export const PathQuery = T.Object({ path: SandboxPath }, { additionalProperties: false });
export const RemoveQuery = T.Object(
  { path: SandboxPath, recursive: T.Optional(T.Union([T.Literal("true"), T.Literal("false")])) },
  { additionalProperties: false },
);
export const WatchQuery = RemoveQuery;
export const PathBody = T.Object({ path: SandboxPath }, { additionalProperties: false });
export const MoveBody = T.Object({ from: SandboxPath, to: SandboxPath }, { additionalProperties: false });

export const FileEntry = T.Object({
  name: T.String(),
  type: T.Union([T.Literal("file"), T.Literal("dir"), T.Literal("symlink"), T.Literal("other")]),
  size: T.Integer(),
  mode: T.Integer(),
  mtime: T.String(),
});

export const PtyQuery = T.Object(
  {
    cols: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    rows: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);

export const ExtendBody = T.Object(
  { seconds: T.Integer({ minimum: 1, maximum: TEN_YEARS_S }) },
  { additionalProperties: false },
);

export const CreateKeyBody = T.Object(
  {
    tenant: T.String({
      pattern: "^[a-z0-9][a-z0-9_-]{0,62}$",
      description: "Tenant id; created on first use",
    }),
    admin: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);

/** `PATCH /v1/tenants/:id`: the tenant's monthly model budget (null: no cap). */
export const TenantBudgetBody = T.Object(
  {
    monthlyBudgetUsd: T.Union([T.Number({ minimum: 0, maximum: 1e9 }), T.Null()], {
      description:
        "USD the tenant's sessions may spend on model tokens per calendar month (UTC); null removes the cap",
    }),
  },
  { additionalProperties: false },
);

/** A tenant, its monthly model budget and this month's spend. */
export const TenantInfo = T.Object({
  id: T.String(),
  createdAt: T.String(),
  monthlyBudgetUsd: T.Union([T.Number(), T.Null()]),
  month: T.String({ description: "The calendar month (UTC) `spentUsd` covers, YYYY-MM" }),
  spentUsd: T.Number({ description: "What the tenant's model requests cost this month" }),
});

export const ApiKeyInfo = T.Object({
  id: T.String(),
  key: T.Optional(T.String({ description: "The secret; shown only when the key is created" })),
  tenant: T.String(),
  admin: T.Boolean(),
  createdAt: T.String(),
  revokedAt: T.Optional(T.Union([T.String(), T.Null()])),
});

export const ErrorBody = T.Object({
  error: T.Object({
    code: T.String(),
    message: T.String(),
    details: T.Optional(T.Record(T.String(), T.Unknown())),
  }),
});

/** Why a session (or the last turn of one that lives on) failed. */
export const SessionFailure = T.Object(
  {
    code: T.Union(
      SESSION_FAILURE_CODES.map((c) => T.Literal(c)),
      {
        description:
          "budget_exceeded, max_turns, max_duration, model_error (see upstreamStatus), model_unavailable, oom, sandbox_lost, server_restart, interrupted, agent_error (the agent process failed otherwise)",
      },
    ),
    message: T.String(),
    upstreamStatus: T.Optional(T.Integer({ description: "The model API's HTTP status (model_error)" })),
  },
  { description: "Why the session ended failed or cancelled, or why its last turn failed" },
);

const Usage = T.Object({
  inputTokens: T.Integer(),
  outputTokens: T.Integer(),
  cacheReadTokens: T.Integer(),
  cacheCreationTokens: T.Integer(),
});

/** The Session object of the API: state, limits, usage, Berth's cost figure, result and failure. */
export const Session = T.Object({
  id: T.String(),
  pattern: T.Union(SESSION_PATTERNS.map((p) => T.Literal(p))),
  sandboxId: T.String(),
  state: T.Union(SESSION_STATES.map((s) => T.Literal(s))),
  agentSessionId: T.Union([T.String(), T.Null()]),
  createdAt: T.String({ format: "date-time" }),
  updatedAt: T.String({ format: "date-time" }),
  endedAt: T.Union([T.String({ format: "date-time" }), T.Null()]),
  turns: T.Integer(),
  limits: T.Object({
    maxTurns: T.Integer(),
    maxBudgetUsd: T.Union([T.Number(), T.Null()]),
    maxDurationSeconds: T.Union([T.Number(), T.Null()]),
  }),
  cwd: T.String(),
  usage: Usage,
  cost: T.Object(
    {
      tokensUsd: T.Number({ description: "Tokens at Berth's price table (what the gateway metered)" }),
      computeUsd: T.Number({
        description:
          "The session's share of its sandbox's running time (never paused or hibernated time) at the reserved CPUs and memory",
      }),
      totalUsd: T.Number(),
    },
    { description: "Berth's figure, the one billed (not the SDK's total_cost_usd)" },
  ),
  result: T.Union([T.Record(T.String(), T.Unknown()), T.Null()], {
    description: "The Agent SDK's last result message",
  }),
  structuredOutput: T.Unknown({
    description:
      "With agent.outputFormat: the last result's answer, valid against its schema (null otherwise)",
  }),
  failureReason: T.Union([T.String(), T.Null()], { description: "failure.message (kept for older clients)" }),
  failure: T.Union([SessionFailure, T.Null()]),
});

/** `GET /v1/usage`: one row per key of the grouping. */
export const UsageList = T.Object({
  items: T.Array(
    T.Object({
      key: T.String({
        description:
          "Tenant id, session id, sandbox id or day (YYYY-MM-DD); by session, a sandbox id holds the sandbox's running time when none of its sessions was live",
      }),
      tokensUsd: T.Number(),
      computeUsd: T.Number(),
      totalUsd: T.Number(),
      inputTokens: T.Integer(),
      outputTokens: T.Integer(),
      sandboxSeconds: T.Number({
        description: "Running seconds billed (a shared sandbox's split by session)",
      }),
    }),
  ),
});
