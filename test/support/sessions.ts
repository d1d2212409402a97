/**
 * Waiting for an agent session to reach a state, through the API (any server or replica).
 * A session that never gets there fails the test with its last record, not a bare timeout.
 */
import { waitFor } from "./wait.js";

/** A GET of an API path on some server, answering the parsed body. */
export type ApiGet = (path: string) => Promise<{ body: any }>;

/** Polls `GET /v1/sessions/:id` until its state is one of `states`; answers that record. */
export function sessionIn(get: ApiGet, id: string, states: string[], timeoutMs = 90_000): Promise<any> {
  return waitFor(
    `session ${id} to reach ${states.join("/")}`,
    async () => (await get(`/v1/sessions/${id}`)).body,
    (s) => states.includes(s?.state),
    { timeoutMs, everyMs: 100 },
  );
}
