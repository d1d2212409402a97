import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait.js";
import { commandOutput, runStreaming } from "./command.js";

const dir = mkdtempSync(join(tmpdir(), "berth-command-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(chunks: AsyncIterable<Buffer>): Promise<string> {
  let text = "";
  for await (const c of chunks) text += c.toString();
  return text;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the command runner's streaming mode", () => {
  it("hands out stdout as it comes and lets the caller judge the exit code", async () => {
    const seen: number[] = [];
    const text = await collect(
      commandOutput("sh", ["-c", "printf one; printf two"], (code) => seen.push(code)),
    );
    expect(text).toBe("onetwo");
    expect(seen).toEqual([0]);
    const failing = commandOutput("sh", ["-c", "printf partial; exit 3"], (code) => {
      if (code !== 0) throw new Error(`exit ${code}`);
    });
    await expect(collect(failing)).rejects.toThrow("exit 3");
  });

  it("kills the command when the reader stops early (nothing left running)", async () => {
    const pidFile = join(dir, "sleeper.pid");
    // It writes once, then writes nothing for 30 s: no SIGPIPE ends it, only the kill on an early stop.
    const chunks = commandOutput("sh", ["-c", `echo $$ > ${pidFile}; echo first; exec sleep 30`], () => {});
    for await (const _ of chunks) break;
    const pid = Number(readFileSync(pidFile, "utf8"));
    await waitFor(
      `the abandoned command (pid ${pid}) to be gone`,
      () => alive(pid),
      (a) => !a,
      { timeoutMs: 10_000 },
    );
  });

  it("tells a command that could not start (-1) from one killed by a signal (no exit code)", async () => {
    const missing = runStreaming("berth-no-such-command", []);
    expect((await missing.exited).code).toBe(-1);
    const sleeper = runStreaming("sleep", ["30"]);
    sleeper.kill();
    expect((await sleeper.exited).code).toBe(128);
  });

  it("keeps stderr only when asked (it often names host paths)", async () => {
    const quiet = runStreaming("sh", ["-c", "echo secret-path >&2"]);
    expect((await quiet.exited).stderr).toBe("");
    const kept = runStreaming("sh", ["-c", "echo why >&2; exit 2"], { keepStderr: true });
    expect(await kept.exited).toEqual({ code: 2, stderr: "why\n" });
  });
});
