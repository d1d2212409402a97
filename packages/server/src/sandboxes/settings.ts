import {
  type Config,
  ConflictError,
  LIVE_SANDBOX_STATES,
  NotFoundError,
  type Runtime,
  type SandboxRecord,
  SETTINGS,
  type Store,
} from "@berth/core";
import type { PatchSandboxBody } from "@berth/core/contract";
import type { EventHub } from "../events/event-log.js";
import { expiryOf, resolveNetwork, resolveTimeout } from "./create-spec.js";

/** What changing a sandbox's settings needs. */
export interface SettingsDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  events: EventHub;
}

/** Applies a PATCH (network, labels, idle policy, timeout) to a sandbox that is not deleted. */
export async function patchSandbox(
  d: SettingsDeps,
  current: SandboxRecord,
  patch: PatchSandboxBody,
): Promise<SandboxRecord> {
  const id = current.id;
  if (current.state === "deleted")
    throw new ConflictError(
      `sandbox '${id}' is deleted: create a new sandbox`,
      { state: "deleted" },
      "invalid_state",
    );
  const out: Partial<SandboxRecord> = {};
  if (patch.network) {
    // Fields not given keep their value: `{"allow": [...]}` alone keeps the mode.
    const merged = { ...current.network, ...patch.network };
    if (patch.network.egress === "none" && patch.network.allow === undefined) merged.allow = [];
    // A deny list belongs to `open`: leaving that mode drops it unless the patch names one.
    if (patch.network.egress && patch.network.egress !== "open" && patch.network.deny === undefined)
      delete merged.deny;
    out.network = resolveNetwork(merged, d.runtime.egressModes, d.runtime.egressDeny);
    if (LIVE_SANDBOX_STATES.includes(current.state)) await d.runtime.setNetworkPolicy(id, out.network);
    void d.events.append(id, "network", { ...out.network }).catch(() => {});
  }
  if (patch.labels) out.labels = patch.labels;
  if (patch.idle !== undefined) out.idle = patch.idle;
  if (patch.timeoutSeconds !== undefined) {
    out.timeoutSeconds = resolveTimeout(d.config, patch.timeoutSeconds || undefined);
    if (patch.timeoutSeconds === 0) out.timeoutSeconds = null;
    out.expiresAt = expiryOf(current.createdAt, out.timeoutSeconds);
  }
  const next = await d.store.updateSandbox(id, out);
  if (!next) throw new NotFoundError("sandbox", id);
  return next;
}

/** Pushes the expiry out by `seconds` from now or from the current expiry, whichever is later. */
export async function extendSandbox(
  d: SettingsDeps,
  s: SandboxRecord,
  seconds: number,
): Promise<SandboxRecord> {
  if (!LIVE_SANDBOX_STATES.includes(s.state))
    throw new ConflictError(
      `sandbox '${s.id}' is ${s.state}: create a new sandbox`,
      { state: s.state },
      "invalid_state",
    );
  const base = Math.max(Date.now(), s.expiresAt ? Date.parse(s.expiresAt) : Date.now());
  const expiresAt = new Date(base + seconds * 1000);
  const lifetime = Math.ceil((expiresAt.getTime() - Date.parse(s.createdAt)) / 1000);
  const max = d.config.maxTimeoutSeconds;
  if (lifetime > max)
    throw new ConflictError(`the sandbox may live at most ${max} s (${SETTINGS.maxTimeoutSeconds.env})`, {
      max,
    });
  const next = await d.store.updateSandbox(s.id, {
    expiresAt: expiresAt.toISOString(),
    timeoutSeconds: lifetime,
  });
  return next ?? s;
}
