import type Anthropic from "@anthropic-ai/sdk";
import type { Logger } from "@berth/core";

let sdk: Promise<typeof import("@anthropic-ai/sdk")> | undefined;
let workerHelpers: Promise<typeof import("@anthropic-ai/sdk/lib/environments/worker")> | undefined;

/**
 * The Anthropic SDK, imported on first use: it costs ~0.4 s of CPU, and every server start (tests
 * restart servers hundreds of times) would pay it although most servers have no integration.
 */
function anthropicSdk(): Promise<typeof import("@anthropic-ai/sdk")> {
  sdk ??= import("@anthropic-ai/sdk");
  return sdk;
}

/** A client of an integration's control plane; each helper call sets its own credential. */
export async function controlPlaneClient(baseUrl: string): Promise<Anthropic> {
  const { default: AnthropicClient } = await anthropicSdk();
  // No key of its own: the SDK's poller and helpers authenticate with the credential they are given.
  return new AnthropicClient({ baseURL: baseUrl, apiKey: null, authToken: null, maxRetries: 2 });
}

/** The sessions token a work item's secret carries (the SDK's worker helper, loaded on first use). */
export async function sessionsTokenOf(secret: string | null): Promise<string | null> {
  workerHelpers ??= import("@anthropic-ai/sdk/lib/environments/worker");
  return (await workerHelpers).sessionsTokenFromSecret(secret);
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
  const client = (await controlPlaneClient(baseUrl)).withOptions({
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
