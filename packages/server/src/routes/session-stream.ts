import { FINAL_SESSION_STATES, type SessionEvent, type SessionRecord, type Store } from "@berth/core";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { SessionEvents } from "../agents/session-events.js";
import { type EventStream, openEventStream } from "../http/sse.js";

/** How often a stream looks in the store for events another replica's agent has written. */
const FOLLOW_STORE_MS = 250;
const BATCH = 500;

const isFinal = (e: SessionEvent) =>
  e.type === "state" && FINAL_SESSION_STATES.includes(e.data.state as SessionRecord["state"]);

/**
 * Streams a session's events after `after` as SSE, from the store: replayed, then followed
 * until the session ends or the client leaves. Events are written by the replica whose runtime
 * holds the session's sandbox; here they arrive in-process, elsewhere by reading the store, so
 * any replica serves the stream and a client reconnecting anywhere with `Last-Event-ID` loses
 * nothing (also while that replica is down: the stream then waits for it).
 */
export async function streamSessionEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  d: { store: Store; events: SessionEvents; replica: string },
  s: SessionRecord,
  after: number,
): Promise<void> {
  const holder = (await d.store.getSandbox(s.sandboxId))?.replica;
  const elsewhere = !!holder && holder !== d.replica;
  const stream = openEventStream(req, reply);
  // A closing server ends the stream; the client resumes from its last event on the next one.
  stream.onClose(d.events.onShutdown(() => stream.end()));
  let last = after;
  // The stream ends after the final state event, and after what the store holds beyond it (a
  // webhook given up later is recorded after the session ended).
  let finished = false;
  const deliver = (e: SessionEvent) => {
    if (e.seq <= last || stream.closed) return true;
    last = e.seq;
    const ok = stream.send(e.type, e.type === "message" ? e.data : { ...e.data, at: e.at }, e.seq);
    if (isFinal(e)) finished = true;
    return ok;
  };
  const deliverLive = (e: SessionEvent) => {
    const ok = deliver(e);
    if (finished) stream.end();
    return ok;
  };
  const readStore = async (): Promise<void> => {
    for (;;) {
      const batch = await d.store.listSessionEvents(s.id, last, BATCH);
      for (const e of batch) if (!deliver(e)) await stream.drained();
      if (batch.length < BATCH || stream.closed) break;
    }
    if (finished) stream.end();
  };
  try {
    if (elsewhere) await followStore(stream, readStore);
    else await followHere(stream, d.events, s.id, readStore, deliverLive);
  } catch (err) {
    // The store failed mid-stream: the client reconnects with Last-Event-ID.
    req.log.warn({ sessionId: s.id, err: String(err) }, "session event stream ended early");
    stream.end();
  }
}

/** This replica runs the agent: replay from the store, then take its appends as they happen. */
async function followHere(
  stream: EventStream,
  events: SessionEvents,
  sessionId: string,
  readStore: () => Promise<void>,
  deliver: (e: SessionEvent) => boolean,
): Promise<void> {
  const pending: SessionEvent[] = [];
  let replaying = true;
  const unsubscribe = events.subscribe(sessionId, (e) => (replaying ? pending.push(e) : deliver(e)));
  stream.onClose(unsubscribe);
  await readStore();
  replaying = false;
  for (const e of pending) deliver(e);
}

/** Another replica runs the agent: read the store until the session ends or the client leaves. */
async function followStore(stream: EventStream, readStore: () => Promise<void>): Promise<void> {
  let wake = () => {};
  stream.onClose(() => wake());
  for (;;) {
    await readStore();
    if (stream.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FOLLOW_STORE_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
