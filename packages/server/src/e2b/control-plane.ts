import { ConflictError, InvalidRequestError, type SandboxRecord, type SandboxState } from "@berth/core";
import { CreateSandboxBody } from "@berth/core/contract";
import { type Static, Type as T, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { FastifyRequest } from "fastify";
import type { Caller } from "../auth/authenticate.js";
import type { App, ServerContext } from "../routes/context.js";
import { checkEgressBounds } from "../sandboxes/create-spec.js";
import { forkSandbox } from "../sandboxes/fork.js";
import type { EnvdTokens } from "./access-token.js";
import { berthNetwork, E2bNetwork } from "./network.js";
import { berthStates, berthTemplate, detailView, listedView, sandboxView } from "./views.js";

const Id = T.Object({ sandboxID: T.String({ maxLength: 128 }) });
const Seconds = T.Integer({ minimum: 0, maximum: 10 * 365 * 86_400 });
/** A point in time as E2B's query parameters give it: unix seconds. */
const UnixSeconds = T.String({ pattern: "^[0-9]{1,12}$" });
/** E2B's default sandbox lifetime when a create names none. */
const DEFAULT_TIMEOUT = 300;

/** What the SDK sends to create a sandbox (fields Berth has no use for are accepted and ignored). */
const NewSandbox = T.Object({
  templateID: T.String({ minLength: 1, maxLength: 128 }),
  timeout: T.Optional(Seconds),
  autoPause: T.Optional(T.Boolean()),
  secure: T.Optional(T.Boolean()),
  allow_internet_access: T.Optional(T.Boolean()),
  metadata: T.Optional(T.Record(T.String(), T.String())),
  envVars: T.Optional(T.Record(T.String(), T.String())),
  network: T.Optional(E2bNetwork),
});

/** Checks a mapped Berth create body against Berth's own schema: bad metadata or env is a 400. */
function checkCreate(body: CreateSandboxBody): CreateSandboxBody {
  const err = Value.Errors(CreateSandboxBody as TSchema, body).First();
  if (err) {
    const field = err.path.replace(/^\//, "").replace(/\//g, ".");
    const e2bField = field.startsWith("labels") ? "metadata" : field.startsWith("env") ? "envVars" : field;
    throw new InvalidRequestError(`${e2bField}: ${err.message}`, { field: e2bField });
  }
  return body;
}

/** Sets the sandbox to end `seconds` from now (E2B's timeout is "from now", Berth's from creation). */
async function endIn(ctx: ServerContext, s: SandboxRecord, seconds: number): Promise<SandboxRecord> {
  if (s.idle?.action === "hibernate" && !s.timeoutSeconds)
    return ctx.sandboxes.update(s.tenantId, s.id, {
      idle: { afterSeconds: Math.max(1, seconds), action: "hibernate" },
    });
  const lifetime = Math.max(1, Math.ceil((Date.now() + seconds * 1000 - Date.parse(s.createdAt)) / 1000));
  return ctx.sandboxes.update(s.tenantId, s.id, { timeoutSeconds: lifetime });
}

/** `metadata` query of the list calls: `k=v&k2=v2`, URL-encoded once more by the SDK. */
function parseMetadata(q: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!q) return out;
  for (const [k, v] of new URLSearchParams(q)) {
    try {
      out[decodeURIComponent(k)] = decodeURIComponent(v);
    } catch {
      throw new InvalidRequestError("metadata must be URL-encoded key=value pairs", { field: "metadata" });
    }
  }
  return out;
}

/**
 * E2B's control plane (the part of its REST API the SDKs call), over Berth's sandbox and snapshot
 * services. Registered under a prefix; the caller is already resolved from `X-API-Key`.
 */
export function controlPlaneRoutes(app: App, ctx: ServerContext, tokens: EnvdTokens): void {
  const s = { hide: true };
  // getHost(port) is `<port>-<sandboxId>.<domain>`: with BERTH_PREVIEW_DOMAIN set that is the
  // preview host of an exposed port (with the port the client reached the server on, as the
  // ports' URLs carry it); without one, E2B's own domain (null), which Berth does not serve.
  const domainOf = (req: FastifyRequest): string | null => {
    const domain = ctx.config.previewDomain;
    if (!domain) return null;
    const host = (
      String(req.headers["x-forwarded-host"] ?? req.headers.host ?? "").split(",")[0] ?? ""
    ).trim();
    const port = /:(\d+)$/.exec(host);
    return port ? `${domain}:${port[1]}` : domain;
  };
  app.get("/health", { schema: s }, async (_req, reply) => reply.status(200).send({ message: "ok" }));

  // v1 and v2 create take the same body here (v2 makes timeout optional: E2B's 300 s default).
  const create = async (caller: Caller, b: Static<typeof NewSandbox>, domain: string | null) => {
    const tenantId = caller.tenantId;
    const network = berthNetwork(b.network, b.allow_internet_access);
    // The server's bounds on what a tenant may open, as for Berth's own create.
    checkEgressBounds(ctx.config, caller, network);
    const snapshot = await ctx.snapshots.get(tenantId, b.templateID).catch(() => null);
    // E2B's `root` user: a root sandbox wherever this host can make one (else only `user`).
    const root = ctx.config.e2bRoot && (await ctx.runtime.rootUnavailable()) === null;
    const body = checkCreate({
      ...(root ? { root: true } : {}),
      ...(snapshot ? { fromSnapshot: snapshot.id } : { template: berthTemplate(b.templateID) }),
      ...(b.metadata ? { labels: b.metadata } : {}),
      ...(b.envVars ? { env: b.envVars } : {}),
      ...(network ? { network } : {}),
      // Auto-pause: no hard end; after `timeout` without activity the sandbox hibernates.
      ...(b.autoPause
        ? {
            timeoutSeconds: 0,
            idle: { afterSeconds: Math.max(1, b.timeout ?? DEFAULT_TIMEOUT), action: "hibernate" as const },
          }
        : { timeoutSeconds: b.timeout ?? DEFAULT_TIMEOUT }),
    });
    const created = await ctx.sandboxes.create(tenantId, body);
    return sandboxView(created, tokens.tokenFor(created.id), domain);
  };
  for (const path of ["/sandboxes", "/v2/sandboxes"])
    app.post(path, { schema: { ...s, body: NewSandbox } }, async (req, reply) =>
      reply.status(201).send(await create(req.caller, req.body, domainOf(req))),
    );

  const list = async (tenantId: string, states: SandboxState[], q: Record<string, string | undefined>) => {
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidRequestError("limit must be an integer between 1 and 1000", { field: "limit" });
    return ctx.store.listSandboxes({
      tenantId,
      states,
      labels: parseMetadata(q.metadata),
      limit,
      cursor: q.nextToken || undefined,
    });
  };
  const ListQuery = T.Object({
    metadata: T.Optional(T.String({ maxLength: 8192 })),
    state: T.Optional(T.String({ maxLength: 64 })),
    limit: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    nextToken: T.Optional(T.String({ maxLength: 128 })),
    order: T.Optional(T.String()),
    startedAfter: T.Optional(T.String()),
    template: T.Optional(T.String()),
  });
  app.get("/v2/sandboxes", { schema: { ...s, querystring: ListQuery } }, async (req, reply) => {
    const wanted = req.query.state ? req.query.state.split(",") : ["running", "paused"];
    const bad = wanted.find((w) => w !== "running" && w !== "paused");
    if (bad)
      throw new InvalidRequestError(`state must be running or paused, got '${bad}'`, { field: "state" });
    const page = await list(req.caller.tenantId, berthStates(wanted), req.query);
    if (page.nextCursor) reply.header("x-next-token", page.nextCursor);
    return page.items.map(listedView);
  });
  app.get("/sandboxes", { schema: { ...s, querystring: ListQuery } }, async (req) => {
    const page = await list(req.caller.tenantId, ["starting", "running"], { ...req.query, limit: "1000" });
    return page.items.map(listedView);
  });

  app.get("/sandboxes/:sandboxID", { schema: { ...s, params: Id } }, async (req) => {
    const sb = await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
    return detailView(sb, tokens.tokenFor(sb.id), domainOf(req));
  });
  app.delete("/sandboxes/:sandboxID", { schema: { ...s, params: Id } }, async (req, reply) => {
    await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
    await ctx.sandboxes.remove(req.caller.tenantId, req.params.sandboxID);
    return reply.status(204).send();
  });

  // The update replaces the whole egress configuration: what is left out is cleared, and a
  // configuration with no lists at all is the server's default (egress `none`).
  app.put(
    "/sandboxes/:sandboxID/network",
    { schema: { ...s, params: Id, body: E2bNetwork } },
    async (req, reply) => {
      const sb = await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
      const network = berthNetwork(req.body, req.body.allow_internet_access) ?? { egress: "none" as const };
      checkEgressBounds(ctx.config, req.caller, network);
      await ctx.sandboxes.update(req.caller.tenantId, sb.id, {
        network: { egress: network.egress, allow: network.allow ?? [], deny: network.deny ?? [] },
      });
      return reply.status(204).send();
    },
  );

  const TimeoutBody = T.Object({ timeout: Seconds });
  app.post(
    "/sandboxes/:sandboxID/timeout",
    { schema: { ...s, params: Id, body: TimeoutBody } },
    async (req, reply) => {
      const sb = await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
      await endIn(ctx, sb, req.body.timeout);
      return reply.status(204).send();
    },
  );

  // Connect (and the older resume): a paused or hibernated sandbox is started again.
  const connect = async (
    tenantId: string,
    id: string,
    timeout: number | undefined,
    domain: string | null,
  ) => {
    let sb = await ctx.sandboxes.live(tenantId, id);
    const resumed = sb.state !== "running" && sb.state !== "starting";
    if (resumed) sb = (await ctx.sandboxes.running(tenantId, id)).sandbox;
    const wantedEnd = Date.now() + (timeout ?? 300) * 1000;
    if (timeout !== undefined && sb.expiresAt && Date.parse(sb.expiresAt) < wantedEnd)
      sb = await endIn(ctx, sb, timeout);
    return { resumed, view: sandboxView(sb, tokens.tokenFor(sb.id), domain) };
  };
  const ConnectBody = T.Object({
    timeout: T.Optional(Seconds),
    autoPause: T.Optional(T.Boolean()),
    memory: T.Optional(T.Boolean()),
  });
  for (const path of [
    "/sandboxes/:sandboxID/connect",
    "/v2/sandboxes/:sandboxID/connect",
    "/sandboxes/:sandboxID/resume",
  ])
    app.post(path, { schema: { ...s, params: Id, body: T.Optional(ConnectBody) } }, async (req, reply) => {
      const r = await connect(req.caller.tenantId, req.params.sandboxID, req.body?.timeout, domainOf(req));
      return reply.status(r.resumed || path.endsWith("resume") ? 201 : 200).send(r.view);
    });

  // E2B's pause keeps files (and, there, memory); Berth's hibernate keeps files and frees memory.
  app.post("/sandboxes/:sandboxID/pause", { schema: { ...s, params: Id } }, async (req, reply) => {
    const sb = await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
    if (sb.state === "paused" || sb.state === "hibernated")
      throw new ConflictError(`sandbox '${sb.id}' is already paused`);
    await ctx.sandboxes.hibernate(req.caller.tenantId, sb.id);
    return reply.status(204).send();
  });

  // Berth keeps no metrics history: the one current sample (its time cut to the second, as
  // E2B's samples are aligned) is returned when it falls in the asked [start, end] window.
  const MetricsQuery = T.Object({ start: T.Optional(UnixSeconds), end: T.Optional(UnixSeconds) });
  app.get(
    "/sandboxes/:sandboxID/metrics",
    { schema: { ...s, params: Id, querystring: MetricsQuery } },
    async (req) => {
      const start = req.query.start === undefined ? undefined : Number(req.query.start);
      const end = req.query.end === undefined ? undefined : Number(req.query.end);
      if (start !== undefined && end !== undefined && start > end)
        throw new InvalidRequestError("start must not be after end", { field: "start" });
      const sb = await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
      if (sb.state !== "running") return [];
      const at = Math.floor(Date.now() / 1000);
      if ((start !== undefined && at < start) || (end !== undefined && at > end)) return [];
      const stats = await ctx.runtime.stats(sb.id);
      const uptime = Math.max(1, (Date.now() - Date.parse(sb.createdAt)) / 1000);
      return [
        {
          timestamp: new Date(at * 1000).toISOString(),
          timestampUnix: at,
          cpuCount: Math.max(1, Math.round(sb.resources.cpus)),
          cpuUsedPct: Math.min(100, (100 * stats.cpuSeconds) / uptime / Math.max(1, sb.resources.cpus)),
          memUsed: stats.memoryBytes,
          memTotal: sb.resources.memoryMiB * 1024 * 1024,
          memCache: 0,
          diskUsed: stats.diskBytes,
          diskTotal: sb.resources.diskMiB * 1024 * 1024,
        },
      ];
    },
  );

  // Fork (sandboxes/fork.ts): E2B answers each copy's result, made or not, where Berth's own
  // fork makes all or none.
  const ForkBody = T.Object({
    timeout: T.Optional(Seconds),
    count: T.Optional(T.Integer({ minimum: 1, maximum: 20 })),
  });
  app.post(
    "/sandboxes/:sandboxID/fork",
    { schema: { ...s, params: Id, body: T.Optional(ForkBody) } },
    async (req, reply) => {
      const tenantId = req.caller.tenantId;
      const results = await forkSandbox(ctx, tenantId, req.params.sandboxID, {
        count: req.body?.count ?? 1,
        ...(req.body?.timeout !== undefined ? { timeoutSeconds: req.body.timeout } : {}),
      });
      return reply.status(201).send(
        results.map((r) => {
          if ("sandbox" in r)
            return { sandbox: sandboxView(r.sandbox, tokens.tokenFor(r.sandbox.id), domainOf(req)) };
          const e = r.error as { status?: number; message?: string };
          return { error: { code: e.status ?? 500, message: e.message ?? "fork failed" } };
        }),
      );
    },
  );

  const SnapshotBody = T.Object({ name: T.Optional(T.String({ minLength: 1, maxLength: 128 })) });
  app.post(
    "/sandboxes/:sandboxID/snapshots",
    { schema: { ...s, params: Id, body: T.Optional(SnapshotBody) } },
    async (req, reply) => {
      await ctx.sandboxes.live(req.caller.tenantId, req.params.sandboxID);
      const snap = await ctx.snapshots.create(
        req.caller.tenantId,
        req.params.sandboxID,
        req.body?.name ?? null,
      );
      return reply.status(201).send({ snapshotID: snap.id, names: snap.name ? [snap.name] : [] });
    },
  );
  const SnapshotQuery = T.Object({
    sandboxID: T.Optional(T.String({ maxLength: 128 })),
    name: T.Optional(T.String({ maxLength: 128 })),
    limit: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    nextToken: T.Optional(T.String({ pattern: "^[0-9]{1,9}$" })),
  });
  app.get("/snapshots", { schema: { ...s, querystring: SnapshotQuery } }, async (req, reply) => {
    const q = req.query;
    const all = (await ctx.snapshots.list(req.caller.tenantId)).filter(
      (x) => (!q.sandboxID || x.sandboxId === q.sandboxID) && (!q.name || x.name === q.name),
    );
    // The page token is an offset into the (stable, creation-ordered) list.
    const from = Number(q.nextToken ?? 0);
    const limit = Math.max(1, Math.min(1000, Number(q.limit ?? 100)));
    const page = all.slice(from, from + limit);
    if (from + limit < all.length) reply.header("x-next-token", String(from + limit));
    return page.map((x) => ({ snapshotID: x.id, names: x.name ? [x.name] : [] }));
  });
  // The SDKs delete a snapshot as a template.
  app.delete(
    "/templates/:templateID",
    { schema: { ...s, params: T.Object({ templateID: T.String({ maxLength: 128 }) }) } },
    async (req, reply) => {
      await ctx.snapshots.remove(req.caller.tenantId, req.params.templateID);
      return reply.status(204).send();
    },
  );
}
