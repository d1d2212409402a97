import { SandboxError } from "@berth/core";
import { commandOutput } from "@berth/linux-host";

/**
 * An overlayfs upper dir as a tar stream, made by GNU tar: whiteouts travel as the 0/0 character
 * devices they are and opaque dirs keep their `trusted.overlay.*` xattrs, so `applyLayer` with
 * `whiteouts: "overlay"` replays the sandbox's changes exactly. The names in it are the
 * sandbox's own and are checked by `applyLayer` like any archive's.
 */
export function upperLayerTar(upper: string): AsyncGenerator<Buffer> {
  return commandOutput(
    "tar",
    ["-c", "-f", "-", "--numeric-owner", "--xattrs", "--xattrs-include=trusted.overlay.*", "-C", upper, "."],
    (code) => {
      // 1: some file changed while read, which cannot happen to a frozen or stopped sandbox's layer.
      if (code !== 0 && code !== 1) throw new SandboxError("could not read the sandbox's files (tar failed)");
    },
  );
}
