/** Reads Server-Sent Events from a real HTTP response (tests only). */
export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/**
 * Opens an SSE request and collects events until `until` says stop, the stream ends, or
 * `timeoutMs` passes (then it returns what it has: the test's assertions decide). `onOpen` is
 * called when the response's headers came (the server has set the stream up by then).
 */
export async function readSse(
  url: string,
  init: RequestInit & { headers?: Record<string, string> },
  o: {
    until?: (e: SseEvent, all: SseEvent[]) => boolean;
    timeoutMs?: number;
    onOpen?: (status: number) => void;
  } = {},
): Promise<{ status: number; events: SseEvent[] }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.timeoutMs ?? 15_000);
  const events: SseEvent[] = [];
  try {
    const res = await fetch(url, {
      ...init,
      headers: { accept: "text/event-stream", ...init.headers },
      signal: abort.signal,
    });
    o.onOpen?.(res.status);
    if (!res.ok || !res.body) return { status: res.status, events };
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end = buf.indexOf("\n\n");
      while (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        end = buf.indexOf("\n\n");
        const e: SseEvent = { event: "message", data: undefined };
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) e.id = line.slice(4);
          else if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        e.data = JSON.parse(data);
        events.push(e);
        if (o.until?.(e, events)) {
          abort.abort();
          return { status: res.status, events };
        }
      }
    }
    return { status: res.status, events };
  } catch (err) {
    if (abort.signal.aborted) return { status: 200, events };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
