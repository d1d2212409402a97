/** The API as the dashboard uses it: the signed-in key on every call, errors as thrown messages. */
const KEY = "berth.apiKey";

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

/** An API error with the contract's code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A JSON call (or a raw body for file uploads). */
export async function api<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  raw = false,
): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${session.key() ?? ""}`,
      ...(body !== undefined && !raw ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : raw ? (body as BodyInit) : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!res.ok)
    throw new ApiError(res.status, data?.error?.code ?? "error", data?.error?.message ?? res.statusText);
  return data as T;
}

/** Server-Sent Events over fetch (EventSource cannot send the key): calls `on` per event until aborted. */
export async function events(
  path: string,
  on: (e: { id?: string; event: string; data: any }) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(path, {
    headers: { authorization: `Bearer ${session.key() ?? ""}`, accept: "text/event-stream" },
    signal,
  });
  if (!res.ok || !res.body) throw new ApiError(res.status, "error", `events: ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const e: { id?: string; event: string; data: any } = { event: "message", data: undefined };
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) e.id = line.slice(4);
        else if (line.startsWith("event: ")) e.event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data) continue;
      try {
        e.data = JSON.parse(data);
      } catch {
        e.data = data;
      }
      on(e);
    }
  }
}
