/** Agent sessions on the wire: create, the Session object, messages, listing. */
import { type Static, Type as T } from "@sinclair/typebox";
import { Env, OneOf, SandboxPath } from "./common.js";
import { CreateSandboxBody } from "./sandboxes.js";

/** How a session uses its sandbox (the Agent SDK hosting guide's four patterns). */
export const SESSION_PATTERNS = ["ephemeral", "long-running", "hybrid", "shared"] as const;
/** One of SESSION_PATTERNS. */
export type SessionPattern = (typeof SESSION_PATTERNS)[number];

/** Where an agent session is in its life. */
export const SESSION_STATES = [
  "starting",
  "running",
  "idle",
  "hibernated",
  "completed",
  "failed",
  "cancelled",
] as const;
/** One of SESSION_STATES. */
export type SessionState = (typeof SESSION_STATES)[number];

/**
 * Why a session (or, for one that lives on, its last turn) failed. Stable codes a program can
 * act on; the message is for a person.
 */
export const SESSION_FAILURE_CODES = [
  "budget_exceeded",
  "max_turns",
  "max_duration",
  "model_error",
  "model_unavailable",
  "oom",
  "sandbox_lost",
  "server_restart",
  "interrupted",
  "agent_error",
] as const;
/** One of SESSION_FAILURE_CODES. */
export type SessionFailureCode = (typeof SESSION_FAILURE_CODES)[number];

/** The Agent SDK's permission modes a session may ask for. */
export const PERMISSION_MODES = ["default", "acceptEdits", "bypassPermissions", "plan"] as const;

const Strings = T.Array(T.String({ minLength: 1, maxLength: 256 }), { maxItems: 256 });

/** Agent options of a new session (all optional; the server applies its defaults and limits). */
export const AgentSpec = T.Object(
  {
    maxTurns: T.Optional(T.Integer({ minimum: 1 })),
    maxBudgetUsd: T.Optional(T.Number({ exclusiveMinimum: 0 })),
    maxDurationSeconds: T.Optional(T.Number({ exclusiveMinimum: 0 })),
    idleSeconds: T.Optional(
      T.Number({
        exclusiveMinimum: 0,
        description: "Hybrid: seconds without a message before the sandbox hibernates",
      }),
    ),
    model: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
    systemPrompt: T.Optional(T.String({ maxLength: 1 << 20 })),
    appendSystemPrompt: T.Optional(T.String({ maxLength: 1 << 20 })),
    allowedTools: T.Optional(Strings),
    disallowedTools: T.Optional(Strings),
    permissionMode: T.Optional(OneOf(PERMISSION_MODES)),
    cwd: T.Optional(SandboxPath),
    mcpServers: T.Optional(T.Record(T.String(), T.Unknown())),
    env: T.Optional(Env),
    outputFormat: T.Optional(
      T.Object(
        { type: T.Literal("json_schema"), schema: T.Record(T.String(), T.Unknown()) },
        {
          additionalProperties: false,
          description:
            "The final answer must satisfy this JSON Schema; it is the session's `structuredOutput`",
        },
      ),
    ),
    settingSources: T.Optional(T.Array(OneOf(["user", "project", "local"] as const), { maxItems: 3 })),
    agents: T.Optional(
      T.Record(
        T.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
        T.Object(
          {
            description: T.String({ minLength: 1, maxLength: 4096 }),
            prompt: T.String({ minLength: 1, maxLength: 1 << 18 }),
            tools: T.Optional(Strings),
            disallowedTools: T.Optional(Strings),
            model: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
            maxTurns: T.Optional(T.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
        { description: "Subagents by name" },
      ),
    ),
    skills: T.Optional(T.Union([T.Literal("all"), Strings])),
    includePartialMessages: T.Optional(T.Boolean({ description: "Partial assistant messages as events" })),
    hooks: T.Optional(
      T.Object(
        {
          PreToolUse: T.Optional(
            T.Array(
              T.Object(
                {
                  matcher: T.Optional(
                    T.String({
                      minLength: 1,
                      maxLength: 256,
                      description: "Tool names it applies to (a pattern)",
                    }),
                  ),
                },
                { additionalProperties: false },
              ),
              { maxItems: 16 },
            ),
          ),
        },
        { additionalProperties: false, description: "Hooks the client answers (as permission requests)" },
      ),
    ),
  },
  { additionalProperties: false },
);
export type AgentSpec = Static<typeof AgentSpec>;

/** Kinds of session events a webhook can ask for. */
export const SESSION_EVENT_TYPES = [
  "message",
  "user_message",
  "state",
  "permission_request",
  "permission_resolved",
  "tool_oom",
] as const;

/** One receiver of a session's events. */
export const SessionWebhook = T.Object(
  {
    url: T.String({
      minLength: 1,
      maxLength: 2048,
      description:
        "http(s) URL; its host must not be loopback, private or link-local unless BERTH_WEBHOOK_ALLOW_CIDRS lists it",
    }),
    events: T.Optional(
      T.Array(OneOf(SESSION_EVENT_TYPES), {
        minItems: 1,
        maxItems: SESSION_EVENT_TYPES.length,
        uniqueItems: true,
        description: "Which events it receives (default: state)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type SessionWebhook = Static<typeof SessionWebhook>;

/** A file of a create call: a path relative to a directory, its content as text or base64. */
const InputFile = T.Object(
  {
    path: T.String({
      minLength: 1,
      maxLength: 4096,
      description: "Relative to the working directory (of a skill: to the skill's folder)",
    }),
    content: T.String({ maxLength: 16 << 20 }),
    encoding: T.Optional(OneOf(["utf8", "base64"] as const)),
  },
  { additionalProperties: false },
);

/** Most skill folders one session can upload. */
export const MAX_SESSION_SKILLS = 16;
/** Most bytes (decoded) of all a session's uploaded skill files together. */
export const MAX_SESSION_SKILL_BYTES = 8 << 20;

/**
 * An uploaded skill folder: `SKILL.md` (front matter with a `description`) and the files it
 * refers to, placed in the working directory's `.claude/skills/<name>/` where `claude` finds it.
 */
export const SessionSkill = T.Object(
  {
    name: T.String({
      pattern: "^[a-z0-9-]{1,64}$",
      description: "The skill's folder name: lowercase letters, digits and hyphens (at most 64)",
    }),
    files: T.Array(InputFile, {
      minItems: 1,
      maxItems: 256,
      description: "The folder's files, paths relative to it; `SKILL.md` is required",
    }),
  },
  { additionalProperties: false },
);
export type SessionSkill = Static<typeof SessionSkill>;

/** `POST /v1/sessions`. */
export const CreateSessionBody = T.Object(
  {
    prompt: T.String({ minLength: 1, maxLength: 1 << 20 }),
    pattern: T.Optional(OneOf(SESSION_PATTERNS)),
    sandbox: T.Optional(
      T.Union(
        [
          T.Object({ id: T.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
          CreateSandboxBody,
        ],
        { description: "An existing sandbox ({id}), or the body of a new one" },
      ),
    ),
    agent: T.Optional(AgentSpec),
    files: T.Optional(
      T.Array(InputFile, {
        maxItems: 1000,
        description: "Files placed in the working directory before the first turn",
      }),
    ),
    archive: T.Optional(
      T.String({
        maxLength: 64 << 20,
        contentEncoding: "base64",
        description: "A tar (base64) unpacked into the working directory before the first turn",
      }),
    ),
    skills: T.Optional(
      T.Array(SessionSkill, {
        minItems: 1,
        maxItems: MAX_SESSION_SKILLS,
        description:
          "Skill folders placed in the working directory's .claude/skills/<name>/ before the first turn (8 MiB in all); the agent may use them through the Skill tool",
      }),
    ),
    resumeFrom: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 128,
        description:
          "An ended session whose conversation (and, in a new sandbox, workspace) this one continues",
      }),
    ),
    webhooks: T.Optional(
      T.Array(SessionWebhook, {
        minItems: 1,
        maxItems: 5,
        description:
          "Receivers POSTed the session's events, signed with the `webhookSecret` of the create response (see docs/agents.md)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

/** `POST /v1/sessions/:id/messages`. */
export const SessionMessageBody = T.Object(
  { text: T.String({ minLength: 1, maxLength: 1 << 20 }) },
  { additionalProperties: false },
);
/** `POST /v1/sessions/:id/permissions/:requestId`: the client's answer to a permission request. */
export const PermissionAnswerBody = T.Object(
  {
    behavior: OneOf(["allow", "deny"] as const),
    updatedInput: T.Optional(T.Record(T.String(), T.Unknown())),
    message: T.Optional(T.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type PermissionAnswerBody = Static<typeof PermissionAnswerBody>;
/** `:id` and `:requestId` of the permission route. */
export const PermissionParams = T.Object({
  id: T.String({ minLength: 1, maxLength: 128 }),
  requestId: T.String({ minLength: 1, maxLength: 128 }),
});
/** `POST /v1/sessions/:id/fork`: N copies of a session, each continuing with `prompt`. */
export const ForkSessionBody = T.Object(
  {
    count: T.Integer({ minimum: 1, maximum: 10, description: "How many copies" }),
    prompt: T.String({ minLength: 1, maxLength: 1 << 20, description: "Each copy's next message" }),
    pattern: T.Optional(OneOf(["ephemeral", "long-running", "hybrid"] as const)),
  },
  { additionalProperties: false },
);
export type ForkSessionBody = Static<typeof ForkSessionBody>;

/** `:id` of the session routes. */
export const SessionParams = T.Object({ id: T.String({ minLength: 1, maxLength: 128 }) });
/** `GET /v1/sessions` filters. */
export const ListSessionsQuery = T.Object({
  state: T.Optional(OneOf(SESSION_STATES)),
  sandboxId: T.Optional(T.String({ maxLength: 128 })),
});

/** Why a session (or the last turn of one that lives on) failed. */
export const SessionFailure = T.Object(
  {
    code: OneOf(SESSION_FAILURE_CODES, {
      description:
        "budget_exceeded, max_turns, max_duration, model_error (see upstreamStatus), model_unavailable, oom, sandbox_lost, server_restart, interrupted, agent_error (the agent process failed otherwise)",
    }),
    message: T.String(),
    upstreamStatus: T.Optional(T.Integer({ description: "The model API's HTTP status (model_error)" })),
  },
  { description: "Why the session ended failed or cancelled, or why its last turn failed" },
);
export type SessionFailure = Static<typeof SessionFailure>;

/**
 * The data of a `tool_oom` session event: the kernel's OOM killer fired in the sandbox during a
 * turn and the agent lived on (its tools are the killer's first choice). The tool is the one whose
 * result came back when the kill was seen; the kernel does not say which process it killed.
 */
export const ToolOomData = T.Object(
  {
    kills: T.Integer({
      minimum: 1,
      description: "How many processes the OOM killer killed since last reported",
    }),
    tool: T.Optional(T.String({ description: "The tool whose call was under way (e.g. Bash), when known" })),
    toolUseId: T.Optional(T.String({ description: "The model's id of that tool call" })),
  },
  { description: "A tool ran the sandbox out of memory and was killed; the agent goes on" },
);
export type ToolOomData = Static<typeof ToolOomData>;

/** Token counts of a session, as the model gateway read them from the responses. */
export const SessionUsage = T.Object({
  inputTokens: T.Integer(),
  outputTokens: T.Integer(),
  cacheReadTokens: T.Integer(),
  cacheCreationTokens: T.Integer(),
});
export type SessionUsage = Static<typeof SessionUsage>;

/** The Session object of the API: state, limits, usage, Berth's cost figure, result and failure. */
export const Session = T.Object({
  id: T.String(),
  pattern: OneOf(SESSION_PATTERNS),
  sandboxId: T.String(),
  state: OneOf(SESSION_STATES),
  agentSessionId: T.Union([T.String(), T.Null()]),
  webhookSecret: T.Optional(
    T.String({
      description:
        "Only in the create response of a session with webhooks: the key of their HMAC-SHA256 signatures (shown once)",
    }),
  ),
  prompt: T.Union([T.String(), T.Null()], {
    description:
      "The first user message, as given at create (null for sessions made before Berth kept it). Every user message is also a `user_message` event.",
  }),
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
  usage: SessionUsage,
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
export type Session = Static<typeof Session>;
