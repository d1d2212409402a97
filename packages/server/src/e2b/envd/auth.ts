import type { SandboxRecord } from "@berth/core";
import { BadGatewayError, BerthError, ForbiddenError, isSandboxId, UnauthorizedError } from "@berth/core";
import type { SandboxUserName } from "@berth/supervisor";
import type { FastifyRequest } from "fastify";
import type { ServerContext } from "../../routes/context.js";
import type { EnvdTokens } from "../access-token.js";
import { type EnvdCall, HOME, ROOT_HOME } from "./call.js";

const calls = new WeakMap<FastifyRequest, EnvdCall>();

/** The sandbox a data-plane request was resolved to (see resolveEnvdCall). */
export function envdCallOf(req: FastifyRequest): EnvdCall {
  const call = calls.get(req);
  if (!call) throw new UnauthorizedError("no sandbox: send E2b-Sandbox-Id and X-Access-Token");
  return call;
}

/**
 * The user a request asks to act as (Basic auth `name:` or `?username=`): `user` (the default) or
 * `root`, which only a sandbox created with root has (its berth-init runs as root of the
 * sandbox's own user namespace).
 */
function userOf(req: FastifyRequest, sandbox: SandboxRecord): SandboxUserName {
  const q = (req.query as { username?: unknown } | undefined)?.username;
  let name = typeof q === "string" && q !== "" ? q : undefined;
  const auth = req.headers.authorization;
  if (!name && auth?.startsWith("Basic "))
    name = Buffer.from(auth.slice(6), "base64").toString("utf8").split(":")[0];
  if (!name || name === "user") return "user";
  if (name === "root") {
    if (sandbox.runtimeInfo.root === true) return "root";
    throw new ForbiddenError(
      "root is not available: this sandbox was created without root (BERTH_E2B_ROOT=false, or a runtime without root sandboxes); it runs commands and files as 'user' (uid 1000)",
    );
  }
  throw new BerthError("unauthorized", `unknown user '${name}': Berth sandboxes have the user 'user'`);
}

/**
 * Resolves a data-plane request: `E2b-Sandbox-Id` names the sandbox, `X-Access-Token` must be
 * its token (checked before anything is looked up, so a wrong token learns nothing about the
 * id), and the sandbox must be running: a paused or gone one answers 502 as E2B's proxy does
 * (the SDKs resume through the control plane's connect, not through the data plane).
 */
export async function resolveEnvdCall(
  req: FastifyRequest,
  ctx: ServerContext,
  tokens: EnvdTokens,
): Promise<EnvdCall> {
  const id = req.headers["e2b-sandbox-id"];
  const token = req.headers["x-access-token"];
  if (typeof id !== "string" || !isSandboxId(id) || typeof token !== "string" || !tokens.matches(id, token))
    throw new UnauthorizedError(
      "send E2b-Sandbox-Id and the sandbox's X-Access-Token (from create or connect)",
    );
  return openEnvdCall(req, ctx, id);
}

/**
 * The call on sandbox `id` for a request already authenticated for it (by its access token or a
 * file URL signature): the sandbox must be running, and the asked user must be one Berth has.
 */
export async function openEnvdCall(req: FastifyRequest, ctx: ServerContext, id: string): Promise<EnvdCall> {
  const sandbox = await ctx.store.getSandbox(id);
  if (!sandbox || sandbox.state === "deleted" || sandbox.state === "failed")
    throw new BadGatewayError(`sandbox '${id}' was not found`);
  req.caller = { tenantId: sandbox.tenantId, keyId: "envd-token", admin: false };
  if (sandbox.state !== "running")
    throw new BadGatewayError(`sandbox '${id}' is ${sandbox.state}: connect to it to resume it`);
  // Past its end the sandbox is over, even before the reaper (every BERTH_REAPER_INTERVAL_MS) removes it.
  if (sandbox.expiresAt && Date.parse(sandbox.expiresAt) <= Date.now())
    throw new BadGatewayError(`sandbox '${id}' reached its end of life`);
  const user = userOf(req, sandbox);
  ctx.sandboxes.touch(id);
  const call = {
    sandbox,
    client: ctx.sandboxes.client(id).as(user),
    home: user === "root" ? ROOT_HOME : HOME,
  };
  calls.set(req, call);
  return call;
}
