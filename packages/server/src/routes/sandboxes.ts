import { InvalidRequestError, NotSupportedError, type SandboxEvent, toSandboxView } from "@berth/core";
import {
  CreateSandboxBody,
  ExtendBody,
  ForkSandboxBody,
  ListOf,
  ListSandboxesQuery,
  PageOf,
  PatchSandboxBody,
  Sandbox,
  SandboxMetrics,
  SandboxParams,
} from "@berth/core/contract";
import { Type as T } from "@sinclair/typebox";
import { computeOf, hourlyUsd } from "../billing/compute.js";
import { lastEventId, openEventStream } from "../http/sse.js";
import { creatorOf, relayJson } from "../replicas/placement.js";
import { checkEgressBounds } from "../sandboxes/create-spec.js";
import { forkAll } from "../sandboxes/fork.js";
import type { App, ServerContext } from "./context.js";

/** `label=k=v` query values as a map. */
function parseLabels(q: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of q === undefined ? [] : Array.isArray(q) ? q : [q]) {
    const i = pair.indexOf("=");
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** `?force=true`: delete a sandbox even though live sessions use it. */
const DeleteSandboxQuery = T.Object(
  { force: T.Optional(T.Union([T.Literal("true"), T.Literal("false")])) },
  { additionalProperties: false },
);

/** Later releases add these; until then they answer 501 with a clear message. */
const NOT_YET: string[] = [];
const LIFECYCLE = ["pause", "resume", "hibernate", "wake"] as const;

/** Sandbox CRUD, lifecycle, events and per-sandbox metrics. */
export function sandboxRoutes(app: App, ctx: ServerContext): void {
  const tags = ["sandboxes"];
  app.post(
    "/v1/sandboxes",
    { schema: { tags, body: T.Optional(CreateSandboxBody), response: { 201: Sandbox } } },
    async (req, reply) => {
      const body = req.body ?? {};
      checkEgressBounds(ctx.config, req.caller, body.network);
      // A snapshot's archive and a volume's disk live with one server: that one creates it.
      const creator = await creatorOf(ctx.store, ctx.replica, req.caller.tenantId, body);
      const there =
        creator && !req.headers["x-berth-forwarded-by"] ? await ctx.store.getReplica(creator) : null;
      if (there) {
        const r = await relayJson(there.url, "POST", "/v1/sandboxes", req.headers, body, ctx.replica);
        // Relayed as the other replica answered (its 201, or its error; it audits the call).
        reply.hijack();
        reply.raw.writeHead(r.status, { "content-type": "application/json; charset=utf-8" });
        reply.raw.end(JSON.stringify(r.body));
        return;
      }
      const s = await ctx.sandboxes.create(req.caller.tenantId, body);
      return reply.status(201).send(toSandboxView(s));
    },
  );
  app.get(
    "/v1/sandboxes",
    {
      schema: {
        tags,
        querystring: ListSandboxesQuery,
        response: { 200: PageOf(Sandbox) },
      },
    },
    async (req) => {
      const q = req.query;
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && (limit < 1 || limit > 1000))
        throw new InvalidRequestError("limit must be between 1 and 1000", { field: "limit" });
      const page = await ctx.sandboxes.list(req.caller.tenantId, {
        state: q.state,
        labels: parseLabels(q.label),
        limit,
        cursor: q.cursor,
      });
      return { items: page.items.map(toSandboxView), nextCursor: page.nextCursor };
    },
  );
  app.get(
    "/v1/sandboxes/:id",
    { schema: { tags, params: SandboxParams, response: { 200: Sandbox } } },
    async (req) => toSandboxView(await ctx.sandboxes.get(req.caller.tenantId, req.params.id)),
  );
  app.patch(
    "/v1/sandboxes/:id",
    { schema: { tags, params: SandboxParams, body: PatchSandboxBody, response: { 200: Sandbox } } },
    async (req) => {
      checkEgressBounds(ctx.config, req.caller, req.body.network);
      return toSandboxView(await ctx.sandboxes.update(req.caller.tenantId, req.params.id, req.body));
    },
  );
  app.delete(
    "/v1/sandboxes/:id",
    {
      schema: {
        tags,
        params: SandboxParams,
        querystring: DeleteSandboxQuery,
        description:
          "Deletes the sandbox. One that live agent sessions use answers 409 in_use unless force=true; forced, those sessions end with sandbox_lost.",
      },
    },
    async (req, reply) => {
      await ctx.sandboxes.remove(req.caller.tenantId, req.params.id, { force: req.query.force === "true" });
      return reply.status(204).send();
    },
  );
  app.post(
    "/v1/sandboxes/:id/extend",
    { schema: { tags, params: SandboxParams, body: ExtendBody, response: { 200: Sandbox } } },
    async (req) =>
      toSandboxView(await ctx.sandboxes.extend(req.caller.tenantId, req.params.id, req.body.seconds)),
  );
  app.post(
    "/v1/sandboxes/:id/fork",
    {
      schema: {
        tags,
        params: SandboxParams,
        body: T.Optional(ForkSandboxBody),
        response: { 201: ListOf(Sandbox) },
        description:
          "Makes `count` copies of the sandbox's files, env, resources and settings (not its memory: processes running in it are not in the copies). On the local driver a copy shares the source's disk blocks until either side writes, so its time does not grow with what the source changed. All copies are made or none: a failure deletes the ones made.",
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      const copies = await forkAll(ctx, req.caller.tenantId, req.params.id, { ...b, count: b.count ?? 1 });
      return reply.status(201).send({ items: copies.map(toSandboxView) });
    },
  );
  for (const what of LIFECYCLE)
    app.post(
      `/v1/sandboxes/:id/${what}`,
      { schema: { tags, params: SandboxParams, response: { 200: Sandbox } } },
      async (req) => toSandboxView(await ctx.sandboxes[what](req.caller.tenantId, req.params.id)),
    );
  for (const what of NOT_YET)
    app.post(`/v1/sandboxes/:id/${what}`, { schema: { tags, params: SandboxParams } }, async (req) => {
      await ctx.sandboxes.get(req.caller.tenantId, req.params.id);
      throw new NotSupportedError(`${what} is not available in this version of Berth`);
    });

  app.get(
    "/v1/sandboxes/:id/metrics",
    { schema: { tags, params: SandboxParams, response: { 200: SandboxMetrics } } },
    async (req, reply) => {
      const { sandbox } = await ctx.sandboxes.running(req.caller.tenantId, req.params.id, reply);
      const stats = await ctx.runtime.stats(sandbox.id);
      const uptimeSeconds = Math.max(0, (Date.now() - Date.parse(sandbox.createdAt)) / 1000);
      // Billed for the time it ran: paused and hibernated stretches cost nothing.
      const compute = (await computeOf(ctx.store, [sandbox.id], ctx.config)).get(sandbox.id);
      const runningSeconds = compute?.runningSeconds ?? 0;
      const costUsd = (runningSeconds / 3600) * hourlyUsd(sandbox.resources, ctx.config);
      return {
        ...stats,
        uptimeSeconds: Math.round(uptimeSeconds * 1000) / 1000,
        runningSeconds: Math.round(runningSeconds * 1000) / 1000,
        costUsd: Number(costUsd.toFixed(6)),
      };
    },
  );

  // Lifecycle events: replayed from the store after Last-Event-ID, then live until deleted.
  app.get("/v1/sandboxes/:id/events", { schema: { tags, params: SandboxParams } }, async (req, reply) => {
    const s = await ctx.sandboxes.get(req.caller.tenantId, req.params.id);
    const after = Number(lastEventId(req) ?? 0);
    if (!Number.isSafeInteger(after) || after < 0)
      throw new InvalidRequestError("Last-Event-ID must be an event id", { field: "Last-Event-ID" });
    const stream = openEventStream(req, reply);
    let last = after;
    const pending: SandboxEvent[] = [];
    let replaying = true;
    const deliver = (e: SandboxEvent) => {
      if (e.seq <= last) return;
      last = e.seq;
      stream.send(e.type, { ...e.data, at: e.at }, e.seq);
      if (e.type === "state" && (e.data.state === "deleted" || e.data.state === "failed")) stream.end();
    };
    // Subscribe before reading the backlog so nothing falls between the two.
    const unsubscribe = ctx.events.subscribe(s.id, (e) => (replaying ? pending.push(e) : deliver(e)));
    stream.onClose(unsubscribe);
    for (;;) {
      const batch = await ctx.store.listEvents(s.id, last, 500);
      for (const e of batch) deliver(e);
      if (batch.length < 500 || stream.closed) break;
    }
    replaying = false;
    for (const e of pending) deliver(e);
    if (s.state === "deleted" || s.state === "failed") stream.end();
  });
}
