import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { initBinaryPath } from "./init-binary.js";

/** `berth-init --tool COMMAND` run as an agent's shell prefix runs it. */
const tool = (args: string[], env: Record<string, string>) =>
  spawnSync(initBinaryPath(), ["--tool", ...args], {
    env: { PATH: "/usr/bin:/bin", ...env },
    encoding: "utf8",
  });

describe("berth-init --tool", () => {
  it("runs the command with bash as the OOM killer's first choice (oom_score_adj 1000), passing its exit code on", () => {
    // /bin/sh is not a shell the agent writes commands for: bash runs it instead.
    const r = tool(['cat /proc/self/oom_score_adj; echo "$0"; [[ -n x ]] && exit 3'], { SHELL: "/bin/sh" });
    expect(r.stdout).toBe("1000\nbash\n");
    expect(r.status).toBe(3);
    const bash = tool(['echo "$0"'], { SHELL: "/bin/bash" });
    expect(bash.stdout).toBe("/bin/bash\n");
  });

  it("refuses anything but exactly one command", () => {
    for (const args of [[], ["a", "b"]]) {
      const r = tool(args, {});
      expect(r.status).toBe(2);
      expect(r.stderr).toContain("usage: berth-init --tool COMMAND");
    }
  });
});
