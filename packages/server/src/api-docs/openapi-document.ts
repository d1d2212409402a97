import { loadConfig, silentLogger } from "@berth/core";
import pino from "pino";
import { buildApp } from "../app.js";
import type { ServerContext } from "../routes/context.js";
import { EventHub } from "../sandboxes/event-hub.js";

/** A part of the server that building the routes must not use: any use throws, naming it. */
function inert<T>(name: string): T {
  return new Proxy(
    {},
    {
      get(_t, prop) {
        if (prop === "then") return undefined;
        throw new Error(`the OpenAPI document was built with no ${name} (it used .${String(prop)})`);
      },
    },
  ) as T;
}

/**
 * The v1 API's OpenAPI document, built from the same route schemas the server validates with,
 * without a store, a runtime or a listener (for docs/api.md and its staleness test).
 */
export async function openApiDocument(version: string): Promise<Record<string, unknown>> {
  const ctx: ServerContext = {
    config: loadConfig({}),
    store: inert("store"),
    runtime: inert("runtime"),
    sandboxes: inert("sandbox service"),
    snapshots: inert("snapshot service"),
    templates: inert("template service"),
    volumes: inert("volume service"),
    // A real hub (the proxy subscribes to it as it is built); it reaches the store only to publish.
    events: new EventHub(inert("store")),
    metrics: inert("metrics"),
    auth: inert("authenticator"),
    reaper: inert("reaper"),
    log: silentLogger,
    version,
    replica: "openapi",
    sessions: { service: inert("session service"), events: inert("session events") },
    tenantBudgets: inert("tenant budgets"),
  };
  const { app, previews } = await buildApp(ctx, pino({ level: "silent" }));
  try {
    await app.ready();
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    previews.close();
    await app.close();
  }
}
