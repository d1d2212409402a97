import { posix } from "node:path";
import type { SandboxRecord } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** The sandbox user's home: E2B resolves relative paths and runs commands there. */
export const HOME = "/home/user";

/** What every data-plane call is about: the sandbox (checked: running, token valid) and its supervisor. */
export interface EnvdCall {
  sandbox: SandboxRecord;
  client: SupervisorClient;
}

/** Where the route hands the resolved call to the Connect handlers. */
export const envdCallKey = createContextKey<EnvdCall | undefined>(undefined, { description: "envd call" });

/** The call of a handler context (always set: the route resolves it before any handler runs). */
export function callOf(ctx: HandlerContext): EnvdCall {
  const call = ctx.values.get(envdCallKey);
  if (!call) throw new Error("envd handler ran without a resolved sandbox");
  return call;
}

/** An absolute, normalized path: relative paths and `~` are taken from the user's home, like envd does. */
export function sandboxPath(p: string | undefined): string {
  const raw = p ?? "";
  const expanded = raw === "~" ? HOME : raw.startsWith("~/") ? `${HOME}/${raw.slice(2)}` : raw;
  return posix.resolve(HOME, expanded);
}

/** Drops the connection of the call under way (the client sees its transport fail). */
export const dropConnectionKey = createContextKey<() => void>(() => {}, { description: "drop connection" });
