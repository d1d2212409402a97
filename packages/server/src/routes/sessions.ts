import { BerthError, InvalidRequestError, type SessionRecord } from "@berth/core";
import {
  type CreateSandboxBody,
  CreateSessionBody,
  ForkSessionBody,
  ListOf,
  ListSessionsQuery,
  PermissionAnswerBody,
  PermissionParams,
  Session,
  SessionMessageBody,
  SessionParams,
} from "@berth/core/contract";
import type { SessionEvents } from "../agents/session-events.js";
import type { SessionService } from "../agents/session-service.js";
import { computeOf, type SandboxCompute, sessionShare } from "../billing/compute.js";
import { lastEventId } from "../http/sse.js";
import { creatorOf, relayJson } from "../replicas/placement.js";
import { FORWARDED_BY } from "../replicas/router.js";
import { checkEgressBounds } from "../sandboxes/create-spec.js";
import type { App, ServerContext } from "./context.js";
import { streamSessionEvents } from "./session-stream.js";
import { usageRoutes } from "./usage.js";

/** The Session as the API shows it: usage and cost included. */
function view(s: SessionRecord, computeUsd: number): Session {
  return {
    id: s.id,
    pattern: s.pattern,
    sandboxId: s.sandboxId,
    state: s.state,
    agentSessionId: s.agentSessionId,
    prompt: s.prompt,
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
            `the server that holds this session's sandbox, or its snapshot or volumes (${owner}), does not answer (${(err as Error).message}); it is served again once that server is back`,
          );
        }
        // Relayed as the other replica answered (its 201, or its error; it audits the call).
        reply.hijack();
        reply.raw.writeHead(answer.status, { "content-type": "application/json; charset=utf-8" });
        reply.raw.end(JSON.stringify(answer.body));
        return;
      }
      const s = await sessions.create(req.caller.tenantId, req.body);
      const shownNow = await show(s);
      return reply
        .status(201)
        .send(s.webhookSecret ? { ...shownNow, webhookSecret: s.webhookSecret } : shownNow);
    },
  );

  app.get(
    "/v1/sessions",
    { schema: { tags, querystring: ListSessionsQuery, response: { 200: ListOf(Session) } } },
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
        body: SessionMessageBody,
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
        body: ForkSessionBody,
        response: { 201: ListOf(Session) },
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
