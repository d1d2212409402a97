import { describe, expect, it } from "vitest";
import { parseCommandArgs, parseKeyValues, parseNumber, splitCommandWords, UsageError } from "./args.js";

const usage = "Usage: test";

describe("command line parsing", () => {
  it("keeps everything after -- untouched as the command, flags included", () => {
    const a = parseCommandArgs(
      ["sb1", "--cwd", "/tmp", "--env", "A=1", "--env", "B=x=y", "--", "sh", "-c", "echo --cwd"],
      { cwd: { type: "string" }, env: { type: "string", multiple: true } },
      usage,
    );
    expect(a.positionals).toEqual(["sb1"]);
    expect(a.rest).toEqual(["sh", "-c", "echo --cwd"]);
    expect(a.values.cwd).toBe("/tmp");
    expect(parseKeyValues(a.values.env, "env", usage)).toEqual({ A: "1", B: "x=y" });
  });

  it("accepts the global flags on every command and rejects unknown ones", () => {
    const a = parseCommandArgs(["--url", "http://h:1", "--key=k", "--json"], {}, usage);
    expect(a.values).toMatchObject({ url: "http://h:1", key: "k", json: true });
    expect(a.rest).toBeUndefined();
    expect(() => parseCommandArgs(["--bogus"], {}, usage)).toThrow(UsageError);
    expect(() => parseCommandArgs(["--url"], {}, usage)).toThrow(UsageError);
  });

  it("rejects K=V flags without a key and non-positive or fractional numbers", () => {
    expect(() => parseKeyValues(["novalue"], "env", usage)).toThrow(/KEY=VALUE/);
    expect(() => parseKeyValues(["=v"], "label", usage)).toThrow(UsageError);
    expect(parseNumber("512", "memory", usage, { integer: true })).toBe(512);
    expect(parseNumber("0.5", "cpus", usage)).toBe(0.5);
    expect(parseNumber(undefined, "cpus", usage)).toBeUndefined();
    for (const bad of ["0", "-1", "abc", "1.5"])
      expect(() => parseNumber(bad, "memory", usage, { integer: true })).toThrow(UsageError);
  });

  it("finds the command words after leading global flags and stops at --", () => {
    expect(splitCommandWords(["--url", "u", "--json", "sandbox", "list", "--state", "running"], 1)).toEqual({
      words: ["sandbox"],
      rest: ["--url", "u", "--json", "list", "--state", "running"],
    });
    expect(splitCommandWords(["--", "sandbox"], 1)).toEqual({ words: [], rest: ["--", "sandbox"] });
  });
});

describe("durations and suggestions", () => {
  it("reads durations with units, bare seconds, and refuses anything else", async () => {
    const { parseDuration } = await import("./args.js");
    expect(parseDuration("30s", "timeout", usage)).toBe(30);
    expect(parseDuration("2h", "timeout", usage)).toBe(7200);
    expect(parseDuration("1h30m", "timeout", usage)).toBe(5400);
    expect(parseDuration("1.5m", "timeout", usage)).toBe(90);
    expect(parseDuration("500ms", "timeout", usage)).toBe(0.5);
    expect(parseDuration("90", "timeout", usage)).toBe(90);
    expect(parseDuration(undefined, "timeout", usage)).toBeUndefined();
    for (const bad of ["", "5x", "h", "2h junk", "-1s", "0s"])
      expect(() => parseDuration(bad, "timeout", usage), bad).toThrow(/--timeout expects a duration/);
    expect(() => parseDuration("500ms", "timeout", usage, { integer: true })).toThrow(/whole seconds/);
  });

  it("names the option that was probably meant, and none when nothing is close", () => {
    const opts = { memory: { type: "string" }, cpus: { type: "string" } } as const;
    expect(() => parseCommandArgs(["--memroy", "1"], opts, usage)).toThrow(
      "unknown option '--memroy'; did you mean --memory?",
    );
    expect(() => parseCommandArgs(["--cpu", "1"], opts, usage)).toThrow("did you mean --cpus?");
    expect(() => parseCommandArgs(["--zzzz"], opts, usage)).toThrow(/^unknown option '--zzzz'$/);
  });
});
