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
