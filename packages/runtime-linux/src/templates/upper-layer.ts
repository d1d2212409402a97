import { spawn } from "node:child_process";
import { SandboxError } from "@berth/core";

/**
 * An overlayfs upper dir as a tar stream, made by GNU tar: whiteouts travel as the 0/0 character
 * devices they are and opaque dirs keep their `trusted.overlay.*` xattrs, so `applyLayer` with
 * `whiteouts: "overlay"` replays the sandbox's changes exactly. The names in it are the
 * sandbox's own and are checked by `applyLayer` like any archive's.
 */
export async function* upperLayerTar(upper: string): AsyncGenerator<Buffer> {
  const child = spawn(
    "tar",
    ["-c", "-f", "-", "--numeric-owner", "--xattrs", "--xattrs-include=trusted.overlay.*", "-C", upper, "."],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const exit = new Promise<number | null>((resolve) => {
    child.on("error", () => resolve(-1));
    child.on("close", (code) => resolve(code));
  });
  let complete = false;
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    complete = true;
  } finally {
    if (!complete) child.kill("SIGKILL");
  }
  // 1: some file changed while read, which cannot happen to a frozen or stopped sandbox's layer.
  const code = await exit;
  if (code !== 0 && code !== 1) throw new SandboxError("could not read the sandbox's files (tar failed)");
}
