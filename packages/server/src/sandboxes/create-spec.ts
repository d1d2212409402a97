import {
  type Config,
  cidrsOverlap,
  type EgressMode,
  FORBIDDEN_V4,
  InvalidRequestError,
  type NetworkPolicy,
  NotSupportedError,
  parseAllowlist,
  parseDenylist,
  type Resources,
  SETTINGS,
} from "@berth/core";
import type { CreateSandboxBody } from "@berth/core/contract";

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

/**
 * The egress policy (default `none`: loopback only); allow and deny entries are checked here.
 * `denySupported`: whether the runtime can enforce `deny` (Runtime.egressDeny).
 */
export function resolveNetwork(
  asked: CreateSandboxBody["network"],
  available: readonly EgressMode[],
  denySupported = false,
): NetworkPolicy {
  const egress = asked?.egress ?? "none";
  const allow = asked?.allow ?? [];
  const deny = parseDenylist(asked?.deny ?? []);
  if (deny.length > 0 && egress !== "open")
    throw new InvalidRequestError(
      `network.deny needs egress 'open' (egress '${egress}' reaches only what 'allow' lists)`,
      { field: "network.deny" },
    );
  if (deny.length > 0 && !denySupported)
    throw new NotSupportedError("network.deny is not supported by this server's runtime");
  if (!available.includes(egress))
    throw new NotSupportedError(
      `network.egress '${egress}' is not available on this host (it lacks nftables or iproute2); use 'none'`,
    );
  if (egress === "none" && allow.length > 0)
    throw new InvalidRequestError("network.allow needs egress 'allowlist' (or 'open')", {
      field: "network.allow",
    });
  parseAllowlist(allow);
  return deny.length > 0 ? { egress, allow, deny } : { egress, allow };
}

/**
 * The operator's bounds on what a tenant's key may open (admin keys are not bound): no CIDR
 * wider than BERTH_EGRESS_MIN_PREFIX, none reaching into a forbidden range (the metadata
 * address, private networks, loopback, reserved). Checked where the caller is known.
 */
export function checkEgressBounds(
  c: Pick<Config, "egressMinPrefix">,
  caller: { admin: boolean },
  network: { allow?: string[] } | undefined,
): void {
  if (caller.admin || !network?.allow) return;
  for (const cidr of parseAllowlist(network.allow).cidrs) {
    const prefix = Number(cidr.split("/")[1]);
    if (prefix < c.egressMinPrefix)
      throw new InvalidRequestError(
        `network.allow: '${cidr}' is wider than /${c.egressMinPrefix}, the widest range a tenant may allow on this server (${SETTINGS.egressMinPrefix.env})`,
        { field: "network.allow", minPrefix: c.egressMinPrefix },
      );
    const hit = FORBIDDEN_V4.find((f) => cidrsOverlap(cidr, f));
    if (hit)
      throw new InvalidRequestError(
        `network.allow: '${cidr}' reaches into ${hit} (private, loopback, link-local or reserved addresses); only an admin key may allow it`,
        { field: "network.allow", forbidden: hit },
      );
  }
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
