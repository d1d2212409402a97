import { randomBytes } from "node:crypto";
import {
  type Config,
  isFinalSessionState,
  type Logger,
  type SessionEvent,
  type SessionEventType,
  type SessionWebhooks as SessionWebhookRecord,
  type Store,
} from "@berth/core";
import { SecretBox } from "../../integrations/managed-agents/secret-box.js";
import type { SessionEvents } from "../session-events.js";
import { checkWebhookUrl, webhookAllowCidrs } from "./webhook-address.js";
import { type DeliveryOutcome, deliverWebhook } from "./webhook-delivery.js";

/** What a session's webhooks need: its events, the store, the settings, the log. */
export interface SessionWebhookDeps {
  config: Config;
  store: Store;
  events: SessionEvents;
  log: Logger;
}

/** Events a webhook receives when it names none: the session's lifecycle. */
const DEFAULT_EVENTS: SessionEventType[] = ["state"];

/** A session's receivers, unsealed, as kept while it lives. */
interface Receivers {
  targets: { url: URL; events: Set<string> }[];
  secret: string;
  /** Each receiver's deliveries, one after another, so that it sees the events in order. */
  queues: Promise<void>[];
}

/**
 * Signed outbound webhooks for session events. At create a session's receivers are checked
 * (`plan`) and a key made for it, shown to the client once and kept sealed with the server
 * secret; then each event of the session is POSTed to each receiver that asked for its kind,
 * in order, signed with HMAC-SHA256 and retried with backoff (see `deliverWebhook`).
 */
export class SessionWebhooks {
  private readonly allowCidrs: string[];
  private readonly sessions = new Map<string, Promise<Receivers | null>>();
  private readonly closing = new AbortController();
  private box: SecretBox | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly d: SessionWebhookDeps) {
    this.allowCidrs = webhookAllowCidrs(d.config.webhookAllowCidrs);
  }

  /**
   * The stored form of the receivers a create asks for, and the key the client verifies
   * signatures with (null when it asks for none). A URL the rule refuses is a 400 naming it.
   */
  plan(
    asked: { url: string; events?: SessionEventType[] }[] | undefined,
  ): { record: SessionWebhookRecord; secret: string } | null {
    if (!asked) return null;
    const targets = asked.map((w, i) => ({
      url: checkWebhookUrl(w.url, this.allowCidrs, `webhooks[${i}].url`).href,
      events: w.events ?? DEFAULT_EVENTS,
    }));
    const secret = `whsec_${randomBytes(32).toString("base64url")}`;
    return { record: { targets, sealedSecret: this.secretBox().seal(secret) }, secret };
  }

  /** Starts delivering every session's events to its receivers. */
  start(): void {
    this.unsubscribe ??= this.d.events.subscribeAll((e) => void this.onEvent(e));
  }

  /** Stops: no new deliveries, and retries under way give up (they are not kept across restarts). */
  close(): void {
    this.unsubscribe?.();
    this.closing.abort();
  }

  private async onEvent(e: SessionEvent): Promise<void> {
    try {
      const r = await this.receiversOf(e.sessionId);
      if (!r) return;
      const body = JSON.stringify({
        id: `${e.sessionId}:${e.seq}`,
        sessionId: e.sessionId,
        seq: e.seq,
        type: e.type,
        at: e.at,
        data: e.data,
      });
      r.targets.forEach((t, i) => {
        if (!t.events.has(e.type)) return;
        r.queues[i] = (r.queues[i] ?? Promise.resolve()).then(async () => {
          const outcome = await deliverWebhook(
            t.url,
            body,
            r.secret,
            { "berth-event": e.type, "berth-session": e.sessionId },
            {
              allowCidrs: this.allowCidrs,
              attempts: this.d.config.webhookAttempts,
              log: this.d.log,
              signal: this.closing.signal,
            },
          );
          if (!outcome.delivered && !outcome.aborted) await this.gaveUp(e, t.url, outcome);
        });
      });
      // An ended session sends nothing more: its receivers are let go once they are served.
      if (e.type === "state" && isFinalSessionState(String(e.data.state) as never))
        this.sessions.delete(e.sessionId);
    } catch (err) {
      this.d.log.warn({ sessionId: e.sessionId, err: String(err) }, "could not send a session webhook");
    }
  }

  /**
   * The last try of a delivery failed: the event is dropped for that receiver, and the session's
   * owner is told (a `webhook_failed` event, which no webhook receives) besides the log.
   */
  private async gaveUp(e: SessionEvent, url: URL, o: Extract<DeliveryOutcome, { delivered: false }>) {
    // The query string may carry the receiver's own token: it is not repeated in logs or events.
    const receiver = `${url.origin}${url.pathname}`;
    this.d.log.error(
      { sessionId: e.sessionId, url: receiver, seq: e.seq, attempts: o.attempts, lastError: o.lastError },
      "a session webhook gave up: the event is dropped for this receiver",
    );
    await this.d.events.append(e.sessionId, "webhook_failed", {
      url: receiver,
      delivery: o.delivery,
      eventSeq: e.seq,
      eventType: e.type,
      attempts: o.attempts,
      error: o.lastError,
    });
  }

  /**
   * The session's receivers, loaded from the store once and kept while it lives (the promise is
   * kept, so that events that come together share one set of queues and stay in order).
   */
  private receiversOf(id: string): Promise<Receivers | null> {
    let r = this.sessions.get(id);
    if (!r) {
      r = this.load(id);
      this.sessions.set(id, r);
    }
    return r;
  }

  private async load(id: string): Promise<Receivers | null> {
    const s = await this.d.store.getSession(id);
    if (!s || isFinalSessionState(s.state)) this.sessions.delete(id);
    if (!s?.webhooks) return null;
    return {
      targets: s.webhooks.targets.map((t) => ({ url: new URL(t.url), events: new Set<string>(t.events) })),
      secret: this.secretBox().open(s.webhooks.sealedSecret),
      queues: [],
    };
  }

  private secretBox(): SecretBox {
    this.box ??= SecretBox.open({ secretKey: this.d.config.secretKey, dataDir: this.d.config.dataDir });
    return this.box;
  }
}
