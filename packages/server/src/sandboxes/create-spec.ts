import {
  type Config,
  type EgressMode,
  InvalidRequestError,
  type NetworkPolicy,
  NotSupportedError,
  parseAllowlist,
  type Resources,
  SETTINGS,
} from "@berth/core";
import type { CreateSandboxBody } from "../http/schemas.js";

/** Resources of a new sandbox: the request's values over the server defaults, within the maximums. */
export function resolveResources(c: Config, asked: CreateSandboxBody["resources"] = {}): Resources {
  const r: Resources = {
    cpus: asked.cpus ?? c.defaultCpus,
    memoryMiB: asked.memoryMiB ?? c.defaultMemoryMiB,
    diskMiB: asked.diskMiB ?? c.defaultDiskMiB,
    pids: asked.pids ?? c.defaultPids,
  };
  const max = { cpus: "maxCpus", memoryMiB: "maxMemoryMiB", diskMiB: "maxDiskMiB", pids: "maxPids" } as const;
  for (const k of Object.keys(max) as (keyof Resources)[]) {
    const limit = c[max[k]];
    if (r[k] > limit)
      throw new InvalidRequestError(
        `resources.${k} must be <= ${limit} on this server (${SETTINGS[max[k]].env}), got ${r[k]}`,
        { field: `resources.${k}`, max: limit },
      );
  }
  return r;
}

/** The egress policy (default `none`: loopback only); allowlist entries are checked here. */
export function resolveNetwork(
  asked: CreateSandboxBody["network"],
  available: readonly EgressMode[],
): NetworkPolicy {
  const egress = asked?.egress ?? "none";
  const allow = asked?.allow ?? [];
  if (!available.includes(egress))
    throw new NotSupportedError(
      `network.egress '${egress}' is not available on this host (it lacks nftables or iproute2); use 'none'`,
    );
  if (egress === "none" && allow.length > 0)
    throw new InvalidRequestError("network.allow needs egress 'allowlist' (or 'open')", {
      field: "network.allow",
    });
  parseAllowlist(allow);
  return { egress, allow };
}

/** `timeoutSeconds` after defaults and the server maximum (0 or null: no limit). */
export function resolveTimeout(c: Config, asked: number | undefined): number | null {
  const t = asked ?? c.defaultTimeoutSeconds;
  if (t > c.maxTimeoutSeconds)
    throw new InvalidRequestError(
      `timeoutSeconds must be <= ${c.maxTimeoutSeconds} (${SETTINGS.maxTimeoutSeconds.env}), got ${t}`,
      { field: "timeoutSeconds", max: c.maxTimeoutSeconds },
    );
  return t > 0 ? t : null;
}

/** When a sandbox created at `createdAt` with this timeout expires. */
export function expiryOf(createdAt: string, timeoutSeconds: number | null): string | null {
  return timeoutSeconds ? new Date(Date.parse(createdAt) + timeoutSeconds * 1000).toISOString() : null;
}

/** Refuses a create from a template that does not exist (400 `unknown template`, naming the field). */
export function checkTemplate(name: string, exists: boolean): void {
  if (!exists)
    throw new InvalidRequestError(`unknown template '${name}' (GET /v1/templates lists them)`, {
      field: "template",
    });
}
