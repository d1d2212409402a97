/**
 * Waiting in tests for a state or an event, never for a fixed time: `waitFor` polls until a
 * condition holds and, past its deadline, fails with what it was waiting for and the last value
 * it saw (a bare timeout says nothing about why).
 */

/** How often `waitFor` looks again. */
const POLL_MS = 50;

/**
 * Polls `probe` until `done(value)` holds; answers that value. Past `timeoutMs` (default 30 s)
 * it throws `timed out waiting for <what>; last saw: <value>`. An error thrown by `probe` is
 * remembered as what it saw and polled through (the thing may not exist yet).
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean = Boolean,
  o: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  let last: string = "nothing yet";
  for (;;) {
    try {
      const v = await probe();
      if (done(v)) return v;
      last = show(v);
    } catch (e) {
      last = `error: ${(e as Error).message}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last saw: ${last}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? POLL_MS));
  }
}

function show(v: unknown): string {
  const text = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}
