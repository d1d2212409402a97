/**
 * Runs a shell script in a sandbox straight through a runtime driver (no server): berth-init's
 * exec over `runtime.connect`, as the runtime-level tests of the drivers use it.
 */
import type { Runtime } from "@berth/core";
import { SupervisorClient } from "@berth/supervisor";

/** `sh -c script` in sandbox `id`, with a plain PATH and no stdin: its stdout and exit code. */
export async function shIn(
  runtime: Pick<Runtime, "connect">,
  id: string,
  script: string,
): Promise<{ stdout: string; exitCode: number | null }> {
  const proc = await new SupervisorClient(() => runtime.connect(id)).exec({
    cmd: ["sh", "-c", script],
    env: { PATH: "/usr/bin:/bin" },
    stdin: false,
  });
  let stdout = "";
  proc.on("stdout", (b: Buffer) => {
    stdout += b.toString();
  });
  const status = await new Promise<{ exitCode: number | null }>((resolve, reject) => {
    proc.on("exit", resolve);
    proc.on("error", reject);
  });
  return { stdout, exitCode: status.exitCode };
}
