import { describe, expect, it } from "vitest";
import { chooseLogFormat, formatLogLine } from "./logger.js";

describe("log lines for a person", () => {
  it("shows time, level, message and the line's own fields; drops pid and hostname", () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.parse("2026-12-05T18:02:03.456Z"),
      pid: 42,
      hostname: "box",
      part: "gateway",
      sessionId: "ses1",
      reason: "over budget: 2 > 1",
      msg: "refused",
    });
    expect(formatLogLine(line)).toBe(
      '18:02:03 WARN  refused  part=gateway sessionId=ses1 reason="over budget: 2 > 1"',
    );
  });

  it("keeps nested fields as JSON, colours only when asked, and passes non-JSON through", () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: "failed", err: { code: "x" } });
    expect(formatLogLine(line)).toBe('00:00:00 ERROR failed  err={"code":"x"}');
    expect(formatLogLine(line, { color: true })).toContain("\x1b[31mERROR\x1b[0m");
    expect(formatLogLine("not json at all")).toBe("not json at all");
  });

  it("chooses pretty on a terminal and JSON elsewhere, unless told", () => {
    expect(chooseLogFormat("auto", true)).toBe("pretty");
    expect(chooseLogFormat("auto", false)).toBe("json");
    expect(chooseLogFormat("json", true)).toBe("json");
    expect(chooseLogFormat("pretty", false)).toBe("pretty");
  });
});
