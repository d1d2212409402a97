import type {
  AgentSpec as AgentSpecSchema,
  CreateSessionBody,
  PermissionAnswerBody,
  Session,
  SessionFailure as SessionFailureSchema,
  SessionPattern,
  SessionState,
} from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";
import type { BerthClient, CallOptions } from "./client.js";

/** How a session uses its sandbox. */
export type { SessionPattern, SessionState };

/** Agent options of a new session (all optional; the server applies its defaults and limits). */
export type AgentSpec = Static<typeof AgentSpecSchema>;

/** What `POST /v1/sessions` takes: a prompt, a pattern, an existing sandbox (`{id}`) or a new one's body. */
export type SessionSpec = CreateSessionBody;

/** The client's answer to a `permission_request` event. */
export type PermissionAnswer = PermissionAnswerBody;

/** Why a session failed (or, for one that lives on, why its last turn did). */
export type SessionFailure = Static<typeof SessionFailureSchema>;

/** A session as the API shows it. */
export type SessionView = Static<typeof Session>;

/**
 * One event of a session: an SDK message (`message`, its JSON unchanged), a message the user sent
 * (`user_message`), a lifecycle change (`state`), a tool call waiting for the client's answer
 * (`permission_request`; answer it with `Sessions.answerPermission`) and how it was settled, a
 * webhook delivery given up after its last attempt (`webhook_failed`), a tool the OOM killer
 * ended while the agent went on (`tool_oom`).
 */
export type SessionEvent =
  // biome-ignore lint/suspicious/noExplicitAny: SDK messages are passed through as is
  | { id: string | undefined; event: "message"; data: Record<string, any> }
  | { id: string | undefined; event: "user_message"; data: { text: string; at: string } }
  | {
      id: string | undefined;
      event: "state";
      data: { state: SessionState; reason?: string; failure?: SessionFailure; at: string };
    }
  | {
      id: string | undefined;
      event: "permission_request";
      data: {
        id: string;
        tool: string;
        input: Record<string, unknown>;
        source: "permission" | "pre_tool_use";
        expiresAt: string;
        at: string;
      };
    }
  | {
      id: string | undefined;
      event: "permission_resolved";
      data: {
        id: string;
        behavior: "allow" | "deny";
        by: "client" | "timeout" | "ended";
        message?: string;
        at: string;
      };
    }
  | {
      id: string | undefined;
      event: "webhook_failed";
      /** A webhook receiver did not take event `eventSeq` in `attempts` tries; it was dropped for it. */
      data: {
        url: string;
        delivery: string;
        eventSeq: number;
        eventType: string;
        attempts: number;
        error: string;
        at: string;
      };
    }
  | {
      id: string | undefined;
      event: "tool_oom";
      data: { kills: number; tool?: string; toolUseId?: string; at: string };
    };

const FINAL: SessionState[] = ["completed", "failed", "cancelled"];

/** Agent sessions: a Claude Agent SDK conversation in a sandbox. */
export class Sessions {
  constructor(private readonly client: BerthClient) {}

  /** Starts a session: its sandbox is made (or taken, `sandbox: {id}`) and the prompt sent. */
  create(spec: SessionSpec, o: CallOptions = {}): Promise<SessionView> {
    return this.client.json("POST", "/v1/sessions", { json: spec, signal: o.signal });
  }

  /** One session with its state, usage, cost and failure. */
  get(id: string, o: CallOptions = {}): Promise<SessionView> {
    return this.client.json("GET", this.path(id), { signal: o.signal });
  }

  /** The caller's sessions, optionally of one state or one sandbox. */
  async list(
    q: { state?: SessionState; sandboxId?: string } = {},
    o: CallOptions = {},
  ): Promise<SessionView[]> {
    return (
      await this.client.json<{ items: SessionView[] }>("GET", "/v1/sessions", { query: q, signal: o.signal })
    ).items;
  }

  /** The next user turn (wakes a hibernated session). */
  async send(id: string, text: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("POST", this.path(id, "/messages"), { json: { text }, signal: o.signal });
  }

  /** `count` copies of a session (its files and conversation), each in a new sandbox, each sent `prompt`. */
  async fork(
    id: string,
    f: { count: number; prompt: string; pattern?: "ephemeral" | "long-running" | "hybrid" },
    o: CallOptions = {},
  ): Promise<SessionView[]> {
    return (
      await this.client.json<{ items: SessionView[] }>("POST", this.path(id, "/fork"), {
        json: f,
        signal: o.signal,
      })
    ).items;
  }

  /** The session's working directory as a tar: now while it runs, else as kept when it ended. */
  async workspace(id: string, o: CallOptions = {}): Promise<Uint8Array> {
    const res = await this.client.request("GET", this.path(id, "/workspace"), { signal: o.signal });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Answers a `permission_request` event of the session (allow or deny the tool call). */
  async answerPermission(
    id: string,
    requestId: string,
    answer: PermissionAnswer,
    o: CallOptions = {},
  ): Promise<void> {
    await this.client.json("POST", this.path(id, `/permissions/${encodeURIComponent(requestId)}`), {
      json: answer,
      signal: o.signal,
    });
  }

  /** Stops the current turn. */
  async interrupt(id: string, o: CallOptions = {}): Promise<void> {
    await this.client.json("POST", this.path(id, "/interrupt"), { signal: o.signal });
  }

  /** Ends the session. */
  async remove(id: string, o: CallOptions = {}): Promise<void> {
    await this.client.request("DELETE", this.path(id), { signal: o.signal });
  }

  /**
   * The session's events from the start (or after `lastEventId`), then live until the session
   * ends; a dropped connection resumes where it left off. With `untilIdle`, also stops at the
   * first result (when the agent waits for the next message). A dropped connection (a server
   * restart) is retried with backoff for `reconnectForMs` (default 60 s) without an event.
   */
  async *events(
    id: string,
    o: { lastEventId?: string; untilIdle?: boolean; signal?: AbortSignal; reconnectForMs?: number } = {},
  ): AsyncGenerator<SessionEvent> {
    const isEnd = (ev: { event: string; data: string }) => {
      if (ev.event !== "state") return false;
      const state = (JSON.parse(ev.data) as { state: SessionState }).state;
      return FINAL.includes(state) || (o.untilIdle === true && (state === "idle" || state === "hibernated"));
    };
    for await (const ev of this.client.stream("GET", this.path(id, "/events"), {
      reconnect: true,
      lastEventId: o.lastEventId,
      isLast: isEnd,
      signal: o.signal,
      ...(o.reconnectForMs !== undefined ? { reconnectForMs: o.reconnectForMs } : {}),
    }))
      yield { id: ev.id, event: ev.event, data: JSON.parse(ev.data) } as SessionEvent;
  }

  private path(id: string, tail = ""): string {
    return `/v1/sessions/${encodeURIComponent(id)}${tail}`;
  }
}
