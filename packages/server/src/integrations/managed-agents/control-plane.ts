import Anthropic from "@anthropic-ai/sdk";
import type { Logger } from "@berth/core";

/** A client of an integration's control plane; each helper call sets its own credential. */
export function controlPlaneClient(baseUrl: string): Anthropic {
  // No key of its own: the SDK's poller and helpers authenticate with the credential they are given.
  return new Anthropic({ baseURL: baseUrl, apiKey: null, authToken: null, maxRetries: 2 });
}

/**
 * Force-stops a work item at the control plane with `credential` (its sessions token, else the
 * environment key), for items whose worker did not end cleanly. Already stopped (409) is fine;
 * other failures are logged: the control plane's lease ends the item in the end.
 */
export async function stopWorkItem(
  baseUrl: string,
  credential: string,
  item: { workId: string; environmentId: string },
  log: Logger,
): Promise<void> {
  const client = controlPlaneClient(baseUrl).withOptions({
    authToken: credential,
    maxRetries: 2,
    timeout: 10_000,
  });
  try {
    await client.beta.environments.work.stop(item.workId, {
      environment_id: item.environmentId,
      force: true,
    });
  } catch (err) {
    if ((err as { status?: number }).status === 409) return;
    log.warn({ err: String(err), workId: item.workId }, "managed agents: could not stop a work item");
  }
}
