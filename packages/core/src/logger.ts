/** The logging port: pino (the server's logger) fits it; tests may pass `silentLogger`. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** pino's numeric levels, as words a person reads. */
const LEVEL_NAMES: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO ",
  40: "WARN ",
  50: "ERROR",
  60: "FATAL",
};

/** Keys every pino line has; the rest are the line's own fields. */
const FRAME_KEYS = new Set(["level", "time", "pid", "hostname", "msg", "v"]);

/** Whether a field's value can go bare after `key=` without confusing a reader. */
const BARE = /^[\w./:@+-]*$/;

function fieldText(value: unknown): string {
  if (typeof value === "string") return value !== "" && BARE.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One JSON log line (as pino writes it) as one line for a person:
 * `18:02:03 INFO  listening  part=server port=7070`. A line that is not JSON is returned as it is,
 * so nothing written to the log is ever lost.
 */
export function formatLogLine(json: string, opts: { color?: boolean } = {}): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
    if (typeof entry !== "object" || entry === null) return json;
  } catch {
    return json;
  }
  const level = typeof entry.level === "number" ? entry.level : 30;
  const name = LEVEL_NAMES[level] ?? String(entry.level);
  const time = typeof entry.time === "number" ? new Date(entry.time).toISOString().slice(11, 19) : "";
  const fields = Object.entries(entry)
    .filter(([k]) => !FRAME_KEYS.has(k))
    .map(([k, v]) => `${k}=${fieldText(v)}`)
    .join(" ");
  const paint = (code: number, text: string) => (opts.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const levelText = paint(level >= 50 ? 31 : level >= 40 ? 33 : level <= 20 ? 90 : 36, name);
  const msg = typeof entry.msg === "string" ? entry.msg : "";
  return `${paint(90, time)} ${levelText} ${msg}${fields ? `  ${paint(90, fields)}` : ""}`;
}

/** Which log format to write: `auto` is pretty on a terminal and JSON anywhere else. */
export function chooseLogFormat(setting: string, isTerminal: boolean): "pretty" | "json" {
  if (setting === "pretty" || setting === "json") return setting;
  return isTerminal ? "pretty" : "json";
}
