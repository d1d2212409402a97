import { chooseLogFormat, formatLogLine } from "@berth/core";
import pino from "pino";

/** Where pino writes: stderr, as JSON lines or (on a terminal, or when asked) readable lines. */
export function logDestination(
  format: string,
  stderr: NodeJS.WriteStream = process.stderr,
): pino.DestinationStream {
  if (chooseLogFormat(format, stderr.isTTY === true) === "json") return pino.destination(2);
  const color = stderr.isTTY === true && !process.env.NO_COLOR;
  return {
    // pino hands over one whole JSON line per call (with its newline).
    write(line: string) {
      stderr.write(`${formatLogLine(line.trimEnd(), { color })}\n`);
    },
  };
}
