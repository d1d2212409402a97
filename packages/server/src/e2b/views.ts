import type { SandboxRecord, SandboxState } from "@berth/core";
import { e2bNetworkView } from "./network.js";

/** The envd version Berth's data plane answers as: it decides which wire features the SDKs use. */
export const ENVD_VERSION = "0.6.4";

/** E2B's name for the template a sandbox starts from when none is given. */
export const E2B_DEFAULT_TEMPLATE = "base";

/** Berth template name for an E2B template id ("base" is Berth's default template). */
export function berthTemplate(templateId: string): string {
  return templateId === E2B_DEFAULT_TEMPLATE ? "default" : templateId;
}

/** E2B template id for a Berth template name. */
export function e2bTemplate(template: string): string {
  return template === "default" ? E2B_DEFAULT_TEMPLATE : template;
}

/** E2B knows two live states: a frozen (paused) and a hibernated sandbox are both "paused". */
export function e2bState(state: SandboxState): "running" | "paused" {
  return state === "paused" || state === "hibernated" ? "paused" : "running";
}

/** Berth states that E2B's state filter means. */
export function berthStates(e2b: string[]): SandboxState[] {
  const out: SandboxState[] = [];
  if (e2b.includes("running")) out.push("starting", "running");
  if (e2b.includes("paused")) out.push("paused", "hibernated");
  return out;
}

/** When the sandbox ends: its expiry, or (no timeout) far in the future. */
function endAt(s: SandboxRecord): string {
  return s.expiresAt ?? new Date(Date.parse(s.createdAt) + 10 * 365 * 86_400_000).toISOString();
}

/** The `Sandbox` answer of create, connect and fork: what the SDK needs to reach the data plane. */
export function sandboxView(s: SandboxRecord, envdAccessToken: string, domain: string | null) {
  return {
    templateID: e2bTemplate(s.template),
    sandboxID: s.id,
    clientID: s.replica ?? "berth",
    envdVersion: ENVD_VERSION,
    envdAccessToken,
    trafficAccessToken: null,
    domain,
  };
}

/** One entry of the list answers (`ListedSandbox`). */
export function listedView(s: SandboxRecord) {
  return {
    templateID: e2bTemplate(s.template),
    sandboxID: s.id,
    clientID: s.replica ?? "berth",
    startedAt: s.createdAt,
    endAt: endAt(s),
    cpuCount: Math.max(1, Math.round(s.resources.cpus)),
    memoryMB: s.resources.memoryMiB,
    diskSizeMB: s.resources.diskMiB,
    metadata: s.labels,
    state: e2bState(s.state),
    envdVersion: ENVD_VERSION,
    volumeMounts: s.volumes.map((v) => ({ name: v.name, path: v.mountPath })),
  };
}

/** The `SandboxDetail` answer of get. */
export function detailView(s: SandboxRecord, envdAccessToken: string, domain: string | null) {
  return {
    ...listedView(s),
    envdAccessToken,
    allowInternetAccess: s.network.egress !== "none",
    network: e2bNetworkView(s),
    domain,
    lifecycle: {
      autoResume: false,
      onTimeout: s.idle?.action === "hibernate" && !s.timeoutSeconds ? "pause" : "kill",
    },
  };
}
