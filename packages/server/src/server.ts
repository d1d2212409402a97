import { mkdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { type Config, describeConfig, inCidr, SETTINGS } from "@berth/core";
import { openStore } from "@berth/store";
import pino, { type Logger as Pino } from "pino";
import { installClaudeBinary } from "./agents/claude-binary.js";
import { SessionEvents } from "./agents/session-events.js";
import { SessionService } from "./agents/session-service.js";
import { buildApp } from "./app.js";
import { ensureAdminKey } from "./auth/api-keys.js";
import { Authenticator } from "./auth/authenticate.js";
import { TenantBudgets } from "./gateway/budgets.js";
import { ModelGateway } from "./gateway/gateway.js";
import { ManagedAgentsRelay } from "./gateway/managed-agents-relay.js";
import { PriceTable } from "./gateway/prices.js";
import { managedAgentsService } from "./integrations/managed-agents/index.js";
import { logDestination } from "./log-destination.js";
import { ServerMetrics } from "./metrics.js";
import { advertisedUrl, replicaIdOf } from "./replicas/identity.js";
import type { App } from "./routes/context.js";
import { runtimeDriver } from "./runtime-drivers.js";
import { EventHub } from "./sandboxes/event-hub.js";
import { Reaper } from "./sandboxes/reaper.js";
import { recoverSandboxes } from "./sandboxes/recovery.js";
import { SandboxService } from "./sandboxes/service.js";
import { SnapshotService } from "./sandboxes/snapshots.js";
import { TemplateService } from "./sandboxes/templates.js";
import { VolumeService } from "./sandboxes/volumes.js";

/** How often a replica records that it is alive (and where), for the others and for people. */
const HEARTBEAT_MS = 10_000;

const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export interface ServerOptions {
  /** A pino logger (default: stderr at `config.logLevel`, in the format of `config.logFormat`). */
  logger?: Pino;
}

/** A running server. `close()` stops the API and leaves sandboxes running for the next start. */
export interface BerthServer {
  url: string;
  /** The preview listener's base URL (exposed ports at `/p/<sandboxId>/<port>/`). */
  previewUrl: string;
  app: App;
  adminKeyPath: string;
  close(): Promise<void>;
}

/**
 * Starts Berth: opens the store, prepares the runtime, recovers sandboxes from the last run,
 * then listens. Nothing is served before recovery has finished.
 */
export async function startServer(config: Config, o: ServerOptions = {}): Promise<BerthServer> {
  const log = o.logger ?? pino({ level: config.logLevel }, logDestination(config.logFormat));
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  log.debug({ config: describeConfig(config) }, "configuration");
  const store = await openStore({ dataDir, databaseUrl: config.databaseUrl });
  // The model gateway listens first: sandbox networks let every sandbox reach its port.
  const metrics = new ServerMetrics();
  // The runtime is made after the gateway (it needs the gateway's port); the ranges are read per request.
  let sandboxCidrs = (): string[] => [];
  let sandboxAddress = (_id: string): string | null => null;
  const gatewayLog = log.child({ part: "gateway" });
  const tenantBudgets = new TenantBudgets(store);
  // Managed Agents workers reach their control plane through the gateway's port, bound the same way.
  const managedRelay = new ManagedAgentsRelay({
    log: gatewayLog.child({ relay: "managed-agents" }),
    tokenFrom: (sandboxId, ip) => sandboxAddress(sandboxId) === ip,
  });
  const gateway = new ModelGateway({
    upstream: config.anthropicBaseUrl,
    apiKey: config.anthropicApiKey,
    prices: new PriceTable(config.modelPrices, config.modelPriceDefault),
    log: gatewayLog,
    // It listens on every address (sandboxes reach it at their host end); only they and loopback may use it.
    allowFrom: (ip) => ip === "127.0.0.1" || ip === "::1" || sandboxCidrs().some((cidr) => inCidr(ip, cidr)),
    // A session's token is taken only from its own sandbox's address.
    tokenFrom: (sandboxId, ip) => sandboxAddress(sandboxId) === ip,
    tenantBudgets,
    sideRelay: managedRelay,
    onRelayed: (seconds, status, usage, cost) => metrics.observeModelCall(seconds, status, usage, cost),
    onUnpriced: (model) => {
      metrics.unpricedAnswers++;
      gatewayLog.warn(
        { model },
        "a model the price table does not know: priced at the default (BERTH_MODEL_PRICE_DEFAULT)",
      );
    },
  });
  const gatewayPort = await gateway.start(config.gatewayPort);
  const runtime = (await runtimeDriver(config.runtime)).create(config, {
    dataDir,
    gatewayPort,
    replica: replicaIdOf(dataDir),
    log: log.child({ part: "runtime" }),
  });
  try {
    await runtime.start();
    sandboxCidrs = () => runtime.addressing.sandboxCidrs();
    sandboxAddress = (id) => runtime.addressing.sourceAddress(id);
    const adminKeyPath = await ensureAdminKey(store, dataDir);
    // Several servers may share a PostgreSQL store: each holds the sandboxes of its own runtime.
    const replica = replicaIdOf(dataDir);
    await store.claimUnowned(replica);
    const events = new EventHub(store);
    const sandboxes = new SandboxService({ config, store, runtime, events, metrics, log, replica });
    const snapshots = new SnapshotService({ dataDir, store, runtime, sandboxes, events });
    sandboxes.useSnapshots(snapshots);
    await snapshots.sweep();
    const templates = new TemplateService({
      dataDir,
      store,
      runtime,
      sandboxes,
      log: log.child({ part: "templates" }),
    });
    templates.sweep();
    const volumes = new VolumeService({ store, runtime, config, replica });
    sandboxes.useVolumes(volumes);
    const reaper = new Reaper({
      store,
      runtime,
      sandboxes,
      events,
      log,
      intervalMs: config.reaperIntervalMs,
    });
    const recovered = await recoverSandboxes({ store, runtime, sandboxes, reaper, log });
    log.info(recovered, "recovered sandboxes");
    const sessions = agentSessions({
      config,
      store,
      runtime,
      sandboxes,
      gateway,
      gatewayPort,
      tenantBudgets,
      metrics,
      log,
    });
    await sessions?.service.recover();
    await sessions?.service.startPool();
    const managedAgents = managedAgentsService(config, {
      store,
      runtime,
      sandboxes,
      relay: managedRelay,
      gatewayPort,
      replica,
      log: log.child({ part: "managed-agents" }),
    });
    await managedAgents?.recover();
    const auth = new Authenticator(store);
    const { app, previews } = await buildApp(
      {
        config,
        store,
        runtime,
        sandboxes,
        snapshots,
        templates,
        volumes,
        events,
        metrics,
        auth,
        reaper,
        log,
        version: VERSION,
        replica,
        sessions,
        tenantBudgets,
        ...(managedAgents ? { managedAgents } : {}),
      },
      log,
    );
    const url = await app.listen({ port: config.port, host: config.host });
    const port = (app.server.address() as { port: number }).port;
    const previewPort = await listenForPreviews(previews, config).catch(async (err: unknown) => {
      await app.close();
      throw err;
    });
    const announce = () =>
      store.upsertReplica({
        id: replica,
        url: advertisedUrl(config.advertiseUrl, config.host, port),
        seenAt: new Date().toISOString(),
      });
    await announce();
    const heartbeat = setInterval(() => {
      announce().catch((err: unknown) => log.warn({ err: String(err) }, "could not announce this replica"));
    }, HEARTBEAT_MS);
    heartbeat.unref();
    reaper.start();
    const base = new URL(url.replace("[::1]", "127.0.0.1"));
    base.port = String(previewPort);
    return {
      url: url.replace("[::1]", "127.0.0.1"),
      previewUrl: base.origin,
      app,
      adminKeyPath,
      async close() {
        clearInterval(heartbeat);
        await sessions?.service.close();
        await managedAgents?.close();
        // Previews stop taking connections; the app's close ends what the proxy has in flight.
        const previewsClosed = closePreviews(previews);
        await app.close();
        previews.closeAllConnections();
        await previewsClosed;
        await gateway.close();
        await reaper.stop();
        await runtime.close();
        await store.close();
      },
    };
  } catch (err) {
    await gateway.close().catch(() => {});
    await runtime.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
}

/** Agent sessions, when the SDK's `claude` binary can be put where sandboxes reach it. */
function agentSessions(
  d: Omit<ConstructorParameters<typeof SessionService>[0], "claudePath" | "events">,
): { service: SessionService; events: SessionEvents } | undefined {
  let claudePath: string;
  try {
    // Pods do not see this host's /usr: there `claude` comes with the Pod (see BERTH_K8S_CLAUDE_PATH).
    claudePath =
      d.config.runtime === "kubernetes" ? d.config.k8sClaudePath : installClaudeBinary(d.config.agentDir);
  } catch (err) {
    d.log.warn({ err: String(err) }, "agent sessions are off: the claude binary could not be installed");
    return undefined;
  }
  const events = new SessionEvents(d.store);
  return { service: new SessionService({ ...d, claudePath, events }), events };
}

/** Starts the preview listener on BERTH_HOST and BERTH_PREVIEW_PORT; resolves to its port. */
function listenForPreviews(previews: Server, config: Config): Promise<number> {
  return new Promise((resolve, reject) => {
    previews.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `the preview listener could not listen on ${config.host}:${config.previewPort} (${SETTINGS.previewPort.env}): ${err.code ?? err.message}`,
        ),
      ),
    );
    previews.listen(config.previewPort, config.host, () => resolve((previews.address() as AddressInfo).port));
  });
}

/** Stops the preview listener: no new connections, idle ones closed (the proxy ends the rest). */
function closePreviews(previews: Server): Promise<void> {
  if (!previews.listening) return Promise.resolve();
  const closed = new Promise<void>((resolve) => previews.close(() => resolve()));
  previews.closeIdleConnections();
  return closed;
}
