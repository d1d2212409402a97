import { ConflictError, isFinalSessionState, type SessionRecord, type Store } from "@berth/core";
import type { SandboxService } from "../sandboxes/service.js";
import type { KeptOutputs, SessionOutputs } from "./session-outputs.js";

/** The session a new one continues (`resumeFrom`) or branches off (`fork`), and what it left. */
export interface Origin {
  source: SessionRecord;
  kept: KeptOutputs;
  fork: boolean;
}

/**
 * What a new session starts from when it resumes an ended session (its kept transcript and
 * workspace) or forks one (a live one's files and transcript as they are now, else as kept).
 * 409 when the source cannot be continued that way.
 */
export async function originOf(
  d: { store: Store; sandboxes: SandboxService; outputs: SessionOutputs },
  source: SessionRecord,
  how: "resume" | "fork",
): Promise<Origin> {
  const id = source.id;
  const ended = isFinalSessionState(source.state);
  if (how === "resume" && !ended)
    throw new ConflictError(`session '${id}' is ${source.state}: send it a message, or fork it`, {
      state: source.state,
    });
  if (!source.agentSessionId)
    throw new ConflictError(`session '${id}' has no conversation yet (its agent never started one)`, {
      state: source.state,
    });
  const sandbox = await d.store.getSandbox(source.sandboxId);
  const kept =
    !ended && sandbox?.state === "running"
      ? await d.outputs.take(source, d.sandboxes.client(sandbox.id), d.sandboxes.processEnv(sandbox))
      : await d.outputs.read(id);
  if (!kept.transcript)
    throw new ConflictError(
      `session '${id}' left no transcript that is still kept (BERTH_SESSION_OUTPUTS_SECONDS): it cannot be ${how === "fork" ? "forked" : "resumed"}`,
      { state: source.state },
    );
  return { source, kept, fork: how === "fork" };
}
