import { NotSupportedError, type SandboxRecord } from "@berth/core";
import type { CreateSandboxBody } from "@berth/core/contract";
import { type Static, Type as T } from "@sinclair/typebox";

/** E2B's "all traffic" selector (`({ allTraffic }) => [allTraffic]`). */
const ALL_TRAFFIC = "0.0.0.0/0";
const Entries = T.Array(T.String({ minLength: 1, maxLength: 253 }), { maxItems: 256 });

/**
 * E2B's `network` of a create and the body of `PUT /sandboxes/:id/network`. `allowPublicTraffic`
 * and `maskRequestHost` are accepted and have no effect (Berth's ports are reached through its
 * proxy with a port token unless exposed public); `rules` and `egressProxy` are refused.
 */
export const E2bNetwork = T.Object({
  allowOut: T.Optional(Entries),
  denyOut: T.Optional(Entries),
  rules: T.Optional(T.Record(T.String(), T.Unknown())),
  egressProxy: T.Optional(T.Unknown()),
  allowPublicTraffic: T.Optional(T.Boolean()),
  maskRequestHost: T.Optional(T.String({ maxLength: 253 })),
  allow_internet_access: T.Optional(T.Boolean()),
});
/** One E2B network configuration. */
export type E2bNetwork = Static<typeof E2bNetwork>;

/**
 * Berth's egress policy for E2B's allow/deny lists (undefined: none asked, the server's default).
 * Denying all traffic (`0.0.0.0/0`, or no internet access) leaves only `allowOut`: egress
 * `allowlist` (addresses, CIDRs and hostnames) or `none`. Denying less is egress `open` with a
 * deny list, `allowOut` winning over it as in E2B. The tenant's bounds on what `allow` may open
 * (checkEgressBounds) apply to the result like to any Berth request.
 */
export function berthNetwork(
  n: E2bNetwork | undefined,
  internetAccess: boolean | undefined,
): CreateSandboxBody["network"] | undefined {
  if (n?.egressProxy != null)
    throw new NotSupportedError("network.egressProxy (a SOCKS5 egress proxy) is not supported by Berth");
  if (n?.rules && Object.keys(n.rules).length > 0)
    throw new NotSupportedError("network.rules (request transforms) are not supported by Berth");
  const allow = (n?.allowOut ?? []).map((e) => e.trim());
  const deny = (n?.denyOut ?? []).map((e) => e.trim());
  if (internetAccess === false || deny.includes(ALL_TRAFFIC))
    return allow.length > 0 ? { egress: "allowlist", allow } : { egress: "none" };
  if (deny.length > 0 || allow.length > 0) return { egress: "open", allow, deny };
  return undefined;
}

/** The `network` of E2B's sandbox detail, from the stored policy. */
export function e2bNetworkView(s: SandboxRecord): { allowOut: string[]; denyOut: string[] } {
  const { egress, allow, deny } = s.network;
  if (egress === "open") return { allowOut: allow, denyOut: deny ?? [] };
  return { allowOut: allow, denyOut: [ALL_TRAFFIC] };
}
