/**
 * What a Pod's status says to the driver: running, ended, failed for good (no point waiting),
 * or what it still waits for. Pure functions over the API's Pod objects.
 */
import type { V1Pod } from "@kubernetes/client-node";

/** A pod whose sandbox container runs (its supervisor may still be a moment from listening). */
export function isRunning(p: V1Pod): boolean {
  return (
    p.status?.phase === "Running" &&
    !!p.status.containerStatuses?.find((c) => c.name === "sandbox")?.state?.running
  );
}

/** The Pod is done or going: failed, succeeded, or being deleted. */
export function isEnded(p: V1Pod): boolean {
  return p.status?.phase === "Failed" || p.status?.phase === "Succeeded" || !!p.metadata?.deletionTimestamp;
}

/** Why a Pod will never start, or null while it still may. */
export function failure(pod: V1Pod): string | null {
  if (pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded")
    return `pod ${pod.status.phase.toLowerCase()}${pod.status.message ? `: ${pod.status.message}` : ""}`;
  const fatal = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
  ];
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const w = c.state?.waiting;
    if (w?.reason && fatal.includes(w.reason))
      return `${c.name}: ${w.reason}${w.message ? ` (${w.message.slice(0, 200)})` : ""}`;
    const t = c.state?.terminated;
    if (t && (c.name === "sandbox" || t.exitCode !== 0))
      return `${c.name} exited (${t.reason ?? t.exitCode})`;
  }
  return null;
}

/** What a starting Pod waits for, for the log (unschedulable, pulling an image...). */
export function pendingReason(pod: V1Pod): string {
  const unscheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  if (unscheduled) return `not scheduled: ${unscheduled.reason ?? ""} ${unscheduled.message ?? ""}`.trim();
  const waiting = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    .map((c) => c.state?.waiting?.reason)
    .find(Boolean);
  return waiting ?? pod.status?.phase ?? "";
}
