/**
 * Waiting for an agent session to reach a state, through the API (any server or replica).
 * A session that never gets there fails the test with its last record, not a bare timeout.
 */

/** A GET of an API path on some server, answering the parsed body. */
export type ApiGet = (path: string) => Promise<{ body: any }>;

/** Polls `GET /v1/sessions/:id` until its state is one of `states`; answers that record. */
export async function sessionIn(get: ApiGet, id: string, states: string[], timeoutMs = 90_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  for (;;) {
    last = (await get(`/v1/sessions/${id}`)).body;
    if (states.includes(last?.state)) return last;
    if (Date.now() > deadline)
      throw new Error(`session ${id} did not reach ${states.join("/")}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
