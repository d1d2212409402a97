import { createHmac, randomUUID } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import type { Logger } from "@berth/core";
import { webhookAddressAllowed } from "./webhook-address.js";

/** How long one attempt may take before it counts as failed. */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** First wait before a retry; each next one doubles, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

/** The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = "berth-signature";

/**
 * The value of the signature header of `body` sent at `t` (unix seconds): the timestamp is
 * signed with the body so that a captured delivery cannot be replayed later as a new one.
 */
export function webhookSignature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

/** What a delivery needs besides the request: the admin's extra ranges, the tries, the log. */
export interface DeliveryOptions {
  allowCidrs: readonly string[];
  attempts: number;
  log: Logger;
  /** Ends the retries early (the server is closing). */
  signal: AbortSignal;
}

/** How a delivery ended: delivered, or given up after `attempts` tries (or cut short by the server closing). */
export type DeliveryOutcome =
  | { delivered: true; delivery: string }
  | { delivered: false; delivery: string; attempts: number; lastError: string; aborted: boolean };

/**
 * POSTs `body` to `url`, signed, until it answers 2xx or `attempts` tries have failed (waiting
 * 1, 2, 4... s between them). Each connection goes only to an address the rule allows: the host
 * name is resolved for the connection itself, so a name that resolves elsewhere later does not
 * get around the check.
 */
export async function deliverWebhook(
  url: URL,
  body: string,
  secret: string,
  headers: Record<string, string>,
  o: DeliveryOptions,
): Promise<DeliveryOutcome> {
  const delivery = randomUUID();
  let lastError = "not tried";
  let attempt = 1;
  for (; attempt <= o.attempts; attempt++) {
    if (o.signal.aborted)
      return { delivered: false, delivery, attempts: attempt - 1, lastError, aborted: true };
    const t = Math.floor(Date.now() / 1000);
    const outcome = await post(url, body, o, {
      ...headers,
      "content-type": "application/json",
      "berth-delivery": delivery,
      "berth-attempt": String(attempt),
      [SIGNATURE_HEADER]: webhookSignature(secret, t, body),
    });
    if (outcome === "ok") return { delivered: true, delivery };
    lastError = outcome;
    o.log.warn({ url: url.origin, attempt, outcome }, "a session webhook delivery failed");
    if (attempt < o.attempts)
      await pause(Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS), o.signal);
  }
  return { delivered: false, delivery, attempts: o.attempts, lastError, aborted: o.signal.aborted };
}

/** One POST: "ok" on 2xx, else what went wrong (a status or an error message). */
function post(
  url: URL,
  body: string,
  { allowCidrs, signal }: Pick<DeliveryOptions, "allowCidrs" | "signal">,
  headers: Record<string, string>,
) {
  const lookup: LookupFunction = (host, opts, cb) =>
    dnsLookup(host, { ...opts, all: true }, (err, addresses) => {
      if (err) return cb(err, "", 0);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !webhookAddressAllowed(a.address, allowCidrs));
      if (bad)
        return cb(new Error(`${host} resolves to ${bad.address}, which webhooks may not reach`), "", 0);
      if (opts.all) return (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (!first) return cb(new Error(`${host} has no address`), "", 0);
      cb(null, first.address, first.family);
    });
  const client = url.protocol === "https:" ? https : http;
  return new Promise<string>((resolve) => {
    const req = client.request(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup,
        timeout: ATTEMPT_TIMEOUT_MS,
        // A closing server does not wait on a slow receiver.
        signal,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 300 ? "ok" : `HTTP ${status}`);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer in ${ATTEMPT_TIMEOUT_MS} ms`)));
    req.on("error", (err) => resolve(err.message));
    req.end(body);
  });
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
