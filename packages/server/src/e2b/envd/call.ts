import { posix } from "node:path";
import type { SandboxRecord } from "@berth/core";
import type { SupervisorClient } from "@berth/supervisor";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** The sandbox user's home: E2B resolves relative paths and runs commands there. */
export const HOME = "/home/user";
/** Root's home, for calls made as `root` (root sandboxes only). */
export const ROOT_HOME = "/root";

/** What every data-plane call is about: the sandbox (checked: running, token valid) and its supervisor. */
export interface EnvdCall {
  sandbox: SandboxRecord;
  /** The supervisor, acting as the call's user. */
  client: SupervisorClient;
  /** The call's user's home (HOME, or ROOT_HOME for root). */
  home: string;
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
export function sandboxPath(p: string | undefined, home = HOME): string {
  const raw = p ?? "";
  const expanded = raw === "~" ? home : raw.startsWith("~/") ? `${home}/${raw.slice(2)}` : raw;
  return posix.resolve(home, expanded);
}

/** Drops the connection of the call under way (the client sees its transport fail). */
export const dropConnectionKey = createContextKey<() => void>(() => {}, { description: "drop connection" });
