import type { Config, Logger, Runtime, Store } from "@berth/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { SessionEvents } from "../agents/session-events.js";
import type { SessionService } from "../agents/session-service.js";
import type { Authenticator } from "../auth/authenticate.js";
import type { TenantBudgets } from "../gateway/budgets.js";
import type { ManagedAgentsService } from "../integrations/managed-agents/registry.js";
import type { ServerMetrics } from "../metrics.js";
import type { EventHub } from "../sandboxes/event-hub.js";
import type { Reaper } from "../sandboxes/reaper.js";
import type { SandboxService } from "../sandboxes/service.js";
import type { SnapshotService } from "../sandboxes/snapshots.js";
import type { TemplateService } from "../sandboxes/templates.js";
import type { VolumeService } from "../sandboxes/volumes.js";

/** What route modules get: the server's parts, wired once in server.ts. */
export interface ServerContext {
  config: Config;
  store: Store;
  runtime: Runtime;
  sandboxes: SandboxService;
  snapshots: SnapshotService;
  templates: TemplateService;
  volumes: VolumeService;
  events: EventHub;
  metrics: ServerMetrics;
  auth: Authenticator;
  reaper: Reaper;
  log: Logger;
  version: string;
  /** This server's replica id (see replicas/identity.ts). */
  replica: string;
  /** Agent sessions (absent when the agent runtime could not be set up). */
  sessions?: { service: SessionService; events: SessionEvents };
  /** Tenants' monthly model budgets (what the gateway holds and what the store says was spent). */
  tenantBudgets: TenantBudgets;
  /** Claude Managed Agents integrations (absent when the worker cannot run here). */
  managedAgents?: ManagedAgentsService;
}

/** The Fastify app with TypeBox schemas as the source of request types. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
