/**
 * A Server-Sent Events parser that follows the WHATWG rules: fields `event`, `data`, `id`,
 * `retry`; comment lines start with `:`; `data` lines join with "\n"; an event is dispatched
 * on a blank line. Input arrives in arbitrary chunks, so a line (or a CRLF pair) may be split
 * across two `push` calls.
 */

/** One dispatched event. `id` is the last event id seen so far (it persists across events). */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/** Incremental parser: push text chunks, get complete events back. */
export class SseParser {
  /** The id a reconnect must send as `Last-Event-ID` (committed only when an event ends). */
  lastEventId: string | undefined;
  /** The reconnection delay the server asked for, in ms. */
  retryMs: number | undefined;

  private buffer = "";
  private pendingCr = false;
  private eventType = "";
  private data: string[] = [];
  private hasData = false;
  /** An `id:` seen in the event being read; a half-received event must not move the resume point. */
  private idBuffer: string | undefined;

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Feeds a chunk of text; returns the events completed by it. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    // A CR ended the previous chunk: a LF opening this one belongs to the same line break.
    if (this.pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === "\r") {
        if (i + 1 === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** Ends the stream: an unterminated event (and its id) is dropped, as the spec says. */
  end(): void {
    this.buffer = "";
    this.idBuffer = this.lastEventId;
    this.resetEvent();
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === "") {
      this.lastEventId = this.idBuffer;
      if (this.hasData) {
        out.push({ event: this.eventType || "message", data: this.data.join("\n"), id: this.lastEventId });
      }
      this.resetEvent();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
  }

  private resetEvent(): void {
    this.eventType = "";
    this.data = [];
    this.hasData = false;
  }
}
