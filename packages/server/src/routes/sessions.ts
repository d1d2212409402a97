import {
  BerthError,
  InvalidRequestError,
  SESSION_PATTERNS,
  SESSION_STATES,
  type SessionRecord,
} from "@berth/core";
import { Type as T } from "@sinclair/typebox";
import type { SessionEvents } from "../agents/session-events.js";
import type { SessionService } from "../agents/session-service.js";
import { computeOf, type SandboxCompute, sessionShare } from "../billing/compute.js";
import { CreateSandboxBody, Env, SandboxPath, Session } from "../http/schemas.js";
import { lastEventId } from "../http/sse.js";
import { creatorOf, relayJson } from "../replicas/placement.js";
import { FORWARDED_BY } from "../replicas/router.js";
import { checkEgressBounds } from "../sandboxes/create-spec.js";
import type { App, ServerContext } from "./context.js";
import { streamSessionEvents } from "./session-stream.js";
import { usageRoutes } from "./usage.js";

const Strings = T.Array(T.String({ minLength: 1, maxLength: 256 }), { maxItems: 256 });
const AgentBody = T.Object(
  {
    maxTurns: T.Optional(T.Integer({ minimum: 1 })),
    maxBudgetUsd: T.Optional(T.Number({ exclusiveMinimum: 0 })),
    maxDurationSeconds: T.Optional(T.Number({ exclusiveMinimum: 0 })),
    idleSeconds: T.Optional(T.Number({ exclusiveMinimum: 0 })),
    model: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
    systemPrompt: T.Optional(T.String({ maxLength: 1 << 20 })),
    appendSystemPrompt: T.Optional(T.String({ maxLength: 1 << 20 })),
    allowedTools: T.Optional(Strings),
    disallowedTools: T.Optional(Strings),
    permissionMode: T.Optional(
      T.Union([
        T.Literal("default"),
        T.Literal("acceptEdits"),
        T.Literal("bypassPermissions"),
        T.Literal("plan"),
      ]),
    ),
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
    settingSources: T.Optional(
      T.Array(T.Union([T.Literal("user"), T.Literal("project"), T.Literal("local")]), { maxItems: 3 }),
    ),
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
const PermissionAnswerBody = T.Object(
  {
    behavior: T.Union([T.Literal("allow"), T.Literal("deny")]),
    updatedInput: T.Optional(T.Record(T.String(), T.Unknown())),
    message: T.Optional(T.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
const PermissionParams = T.Object({
  id: T.String({ minLength: 1, maxLength: 128 }),
  requestId: T.String({ minLength: 1, maxLength: 128 }),
});
const CreateSessionBody = T.Object(
  {
    prompt: T.String({ minLength: 1, maxLength: 1 << 20 }),
    pattern: T.Optional(T.Union(SESSION_PATTERNS.map((p) => T.Literal(p)))),
    sandbox: T.Optional(
      T.Union([
        T.Object({ id: T.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
        CreateSandboxBody,
      ]),
    ),
    agent: T.Optional(AgentBody),
    files: T.Optional(
      T.Array(
        T.Object(
          {
            path: T.String({
              minLength: 1,
              maxLength: 4096,
              description: "Relative to the working directory",
            }),
            content: T.String({ maxLength: 16 << 20 }),
            encoding: T.Optional(T.Union([T.Literal("utf8"), T.Literal("base64")])),
          },
          { additionalProperties: false },
        ),
        { maxItems: 1000, description: "Files placed in the working directory before the first turn" },
      ),
    ),
    archive: T.Optional(
      T.String({
        maxLength: 64 << 20,
        contentEncoding: "base64",
        description: "A tar (base64) unpacked into the working directory before the first turn",
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
  },
  { additionalProperties: false },
);
const ForkBody = T.Object(
  {
    count: T.Integer({ minimum: 1, maximum: 10, description: "How many copies" }),
    prompt: T.String({ minLength: 1, maxLength: 1 << 20, description: "Each copy's next message" }),
    pattern: T.Optional(T.Union([T.Literal("ephemeral"), T.Literal("long-running"), T.Literal("hybrid")])),
  },
  { additionalProperties: false },
);
const SessionParams = T.Object({ id: T.String({ minLength: 1, maxLength: 128 }) });
const ListQuery = T.Object({
  state: T.Optional(T.Union(SESSION_STATES.map((s) => T.Literal(s)))),
  sandboxId: T.Optional(T.String({ maxLength: 128 })),
});

/** The Session as the API shows it: usage and cost included. */
function view(s: SessionRecord, computeUsd: number) {
  return {
    id: s.id,
    pattern: s.pattern,
    sandboxId: s.sandboxId,
    state: s.state,
    agentSessionId: s.agentSessionId,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    endedAt: s.endedAt,
    turns: s.turns,
    limits: {
      maxTurns: s.options.maxTurns,
      maxBudgetUsd: s.options.maxBudgetUsd,
      maxDurationSeconds: s.options.maxDurationSeconds,
    },
    cwd: s.options.cwd,
    usage: s.usage,
    cost: { tokensUsd: s.tokensUsd, computeUsd, totalUsd: s.tokensUsd + computeUsd },
    result: s.result,
    structuredOutput: s.result?.structured_output ?? null,
    failureReason: s.failureReason,
    failure: s.failure,
  };
}

/** A session's `sandbox`: an existing one's id, or what to make a new one from. */
type SessionSandbox = { id?: string } & CreateSandboxBody;

/**
 * The URL of the other replica a session must be made on, or null for here: the one holding
 * its existing sandbox (`sandbox.id`), or the snapshot or volumes its new sandbox is made from.
 */
async function creatorUrl(
  ctx: ServerContext,
  tenantId: string,
  sandbox: SessionSandbox | undefined,
): Promise<string | null> {
  let replica: string | null | undefined;
  if (sandbox?.id) {
    const record = await ctx.store.getSandbox(sandbox.id);
    replica = record?.tenantId === tenantId ? record.replica : null;
  } else if (sandbox) replica = await creatorOf(ctx.store, ctx.replica, tenantId, sandbox);
  if (!replica || replica === ctx.replica) return null;
  return (await ctx.store.getReplica(replica))?.url ?? null;
}

/** Agent sessions: create, list, get, events (SSE), messages, interrupt, delete. */
export function sessionRoutes(
  app: App,
  ctx: ServerContext,
  sessions: SessionService,
  events: SessionEvents,
): void {
  const tags = ["sessions"];
  const shown = (s: SessionRecord, compute: Map<string, SandboxCompute>) =>
    view(s, sessionShare(compute.get(s.sandboxId), s.id).usd);
  const show = async (s: SessionRecord) => shown(s, await computeOf(ctx.store, [s.sandboxId], ctx.config));
  usageRoutes(app, ctx);

  app.post(
    "/v1/sessions",
    { schema: { tags, body: CreateSessionBody, response: { 201: Session } } },
    async (req, reply) => {
      checkEgressBounds(ctx.config, req.caller, (req.body.sandbox as SessionSandbox | undefined)?.network);
      // A session runs where its sandbox runs: another replica may hold it, or what it is made from.
      const owner = req.headers[FORWARDED_BY]
        ? null
        : await creatorUrl(ctx, req.caller.tenantId, req.body.sandbox as SessionSandbox | undefined);
      if (owner) {
        let answer: { status: number; body: unknown };
        try {
          answer = await relayJson(owner, "POST", "/v1/sessions", req.headers, req.body, ctx.replica);
        } catch (err) {
          throw new BerthError(
            "replica_unavailable",
            503,
            `the server that holds this session's sandbox, or its snapshot or volumes (${owner}), does not answer (${(err as Error).message}); it is served again once that server is back`,
          );
        }
        // Relayed as the other replica answered (its 201, or its error; it audits the call).
        reply.hijack();
        reply.raw.writeHead(answer.status, { "content-type": "application/json; charset=utf-8" });
        reply.raw.end(JSON.stringify(answer.body));
        return;
      }
      const s = await sessions.create(req.caller.tenantId, req.body as never);
      return reply.status(201).send(await show(s));
    },
  );

  app.get(
    "/v1/sessions",
    { schema: { tags, querystring: ListQuery, response: { 200: T.Object({ items: T.Array(Session) }) } } },
    async (req) => {
      const items = await sessions.list(req.caller.tenantId, req.query);
      const compute = await computeOf(
        ctx.store,
        items.map((s) => s.sandboxId),
        ctx.config,
      );
      return { items: items.map((s) => shown(s, compute)) };
    },
  );

  app.get(
    "/v1/sessions/:id",
    { schema: { tags, params: SessionParams, response: { 200: Session } } },
    async (req) => show(await sessions.get(req.caller.tenantId, req.params.id)),
  );

  app.post(
    "/v1/sessions/:id/messages",
    {
      schema: {
        tags,
        params: SessionParams,
        body: T.Object(
          { text: T.String({ minLength: 1, maxLength: 1 << 20 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      await sessions.send(req.caller.tenantId, req.params.id, req.body.text);
      return reply.status(202).send({ accepted: true });
    },
  );

  // The client's answer to a `permission_request` event (a tool call or a PreToolUse hook waits on it).
  app.post(
    "/v1/sessions/:id/permissions/:requestId",
    { schema: { tags, params: PermissionParams, body: PermissionAnswerBody } },
    async (req, reply) => {
      if (req.body.behavior === "deny" && req.body.updatedInput !== undefined)
        throw new InvalidRequestError("updatedInput goes with allow, not deny", { field: "updatedInput" });
      await sessions.answerPermission(req.caller.tenantId, req.params.id, req.params.requestId, req.body);
      return reply.status(202).send({ accepted: true });
    },
  );

  // Best-of-N: copies of a session (conversation and files), each in a sandbox of its own.
  app.post(
    "/v1/sessions/:id/fork",
    {
      schema: {
        tags,
        params: SessionParams,
        body: ForkBody,
        response: { 201: T.Object({ items: T.Array(Session) }) },
      },
    },
    async (req, reply) => {
      const made = await sessions.fork(req.caller.tenantId, req.params.id, req.body);
      const compute = await computeOf(
        ctx.store,
        made.map((s) => s.sandboxId),
        ctx.config,
      );
      return reply.status(201).send({ items: made.map((s) => shown(s, compute)) });
    },
  );

  // The session's working directory as tar: now while it runs, else as kept when it ended.
  app.get(
    "/v1/sessions/:id/workspace",
    {
      schema: {
        tags,
        params: SessionParams,
        description: "The session's working directory as a tar stream.",
      },
    },
    async (req, reply) => {
      const w = await sessions.workspace(req.caller.tenantId, req.params.id);
      if (w.size !== undefined) reply.header("content-length", w.size);
      return reply.type("application/x-tar").send(w.stream);
    },
  );

  app.post("/v1/sessions/:id/interrupt", { schema: { tags, params: SessionParams } }, async (req, reply) => {
    await sessions.interrupt(req.caller.tenantId, req.params.id);
    return reply.status(202).send({ accepted: true });
  });

  app.delete("/v1/sessions/:id", { schema: { tags, params: SessionParams } }, async (req, reply) => {
    await sessions.remove(req.caller.tenantId, req.params.id);
    return reply.status(204).send();
  });

  // Every SDK message (`message`) and lifecycle change (`state`): replayed, then live until the end.
  // Served by any replica from the store (see session-stream.ts).
  app.get("/v1/sessions/:id/events", { schema: { tags, params: SessionParams } }, async (req, reply) => {
    const s = await sessions.get(req.caller.tenantId, req.params.id);
    const after = Number(lastEventId(req) ?? 0);
    if (!Number.isSafeInteger(after) || after < 0)
      throw new InvalidRequestError("Last-Event-ID must be an event id", { field: "Last-Event-ID" });
    await streamSessionEvents(req, reply, { store: ctx.store, events, replica: ctx.replica }, s, after);
  });
}
