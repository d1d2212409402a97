import { ConflictError, NotFoundError, newId, type SessionRecord } from "@berth/core";
import type { AgentRunSpec } from "./agent-run.js";
import type { SessionEvents } from "./session-events.js";

/** What the client decides about a tool call. */
export interface PermissionAnswer {
  behavior: "allow" | "deny";
  /** Allow only: the input the tool runs with instead of the one asked for. */
  updatedInput?: Record<string, unknown>;
  /** Deny: what the agent is told. */
  message?: string;
}

/** Where a request comes from: the SDK's permission check (`canUseTool`) or a `PreToolUse` hook. */
export type PermissionSource = "permission" | "pre_tool_use";

/** How many settled request ids are remembered. */
const SETTLED_KEPT = 10_000;

interface Pending {
  sessionId: string;
  settle: (a: PermissionAnswer, by: "client" | "timeout" | "ended") => void;
}

/**
 * Tool calls waiting for the client: each is a `permission_request` event `{id, tool, input,
 * source, expiresAt}` on the session's stream, answered by `POST /v1/sessions/:id/permissions/:requestId`
 * or denied when no answer comes in time; every outcome is a `permission_resolved` event.
 * Requests live in the server that runs the agent (its `claude` waits on them).
 */
export class PermissionRequests {
  private readonly pending = new Map<string, Pending>();
  /** Recently settled requests (id → session), so a late answer is 409, not 404. */
  private readonly settled = new Map<string, string>();

  constructor(private readonly d: { events: SessionEvents; timeoutMs: number }) {}

  /** Asks the client about one tool call; settles with its answer, or a deny on timeout or abort. */
  async ask(
    sessionId: string,
    source: PermissionSource,
    tool: string,
    input: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<PermissionAnswer> {
    const id = newId("perm_");
    const expiresAt = new Date(Date.now() + this.d.timeoutMs).toISOString();
    let settle!: Pending["settle"];
    const answered = new Promise<PermissionAnswer>((resolve) => {
      settle = (a, by) => {
        if (!this.pending.delete(id)) return;
        this.settled.set(id, sessionId);
        if (this.settled.size > SETTLED_KEPT) this.settled.delete(this.settled.keys().next().value as string);
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        void this.d.events
          .append(sessionId, "permission_resolved", {
            id,
            behavior: a.behavior,
            by,
            ...(a.message ? { message: a.message } : {}),
          })
          .catch(() => {});
        resolve(a);
      };
    });
    const seconds = Math.round(this.d.timeoutMs / 1000);
    const timer = setTimeout(
      () =>
        settle(
          { behavior: "deny", message: `no answer to the permission request within ${seconds} s` },
          "timeout",
        ),
      this.d.timeoutMs,
    );
    const onAbort = () => settle({ behavior: "deny", message: "the turn was stopped" }, "ended");
    signal.addEventListener("abort", onAbort, { once: true });
    this.pending.set(id, { sessionId, settle });
    await this.d.events.append(sessionId, "permission_request", { id, tool, input, source, expiresAt });
    return answered;
  }

  /** The client's answer to request `requestId` of session `sessionId` (404 unknown, 409 already settled). */
  answer(sessionId: string, requestId: string, a: PermissionAnswer): void {
    const p = this.pending.get(requestId);
    if (!p || p.sessionId !== sessionId) {
      if (this.settled.get(requestId) === sessionId)
        throw new ConflictError(`permission request '${requestId}' was already settled`, { requestId });
      throw new NotFoundError("permission request", requestId);
    }
    p.settle(a, "client");
  }

  /** Denies every open request of a session (its agent stopped). */
  endSession(sessionId: string): void {
    for (const p of [...this.pending.values()])
      if (p.sessionId === sessionId)
        p.settle({ behavior: "deny", message: "the session's agent stopped" }, "ended");
  }
}

/**
 * The client's say over tool calls: in a permission mode other than `bypassPermissions` each
 * call the agent may not make on its own is a `permission_request`; each `PreToolUse` hook is one too.
 */
export function toolControl(
  ask: PermissionRequests,
  s: SessionRecord,
): Pick<AgentRunSpec, "canUseTool" | "preToolUse"> {
  const mode = s.options.permissionMode ?? "bypassPermissions";
  const hooks = s.options.hooks?.PreToolUse ?? [];
  return {
    ...(mode !== "bypassPermissions"
      ? {
          canUseTool: async (tool, input, { signal }) => {
            const a = await ask.ask(s.id, "permission", tool, input, signal);
            return a.behavior === "allow"
              ? { behavior: "allow", updatedInput: a.updatedInput ?? input }
              : { behavior: "deny", message: a.message ?? "the client denied this tool call" };
          },
        }
      : {}),
    preToolUse: hooks.map((h) => ({
      ...(h.matcher ? { matcher: h.matcher } : {}),
      hooks: [
        async (input, _toolUseId, { signal }) => {
          if (input.hook_event_name !== "PreToolUse") return {};
          const a: PermissionAnswer = await ask.ask(
            s.id,
            "pre_tool_use",
            input.tool_name,
            (input.tool_input ?? {}) as Record<string, unknown>,
            signal,
          );
          return {
            hookSpecificOutput: {
              hookEventName: "PreToolUse" as const,
              permissionDecision: a.behavior,
              ...(a.message ? { permissionDecisionReason: a.message } : {}),
              ...(a.updatedInput ? { updatedInput: a.updatedInput } : {}),
            },
          };
        },
      ],
    })),
  };
}
