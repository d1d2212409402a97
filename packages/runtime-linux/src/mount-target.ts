import { lstatSync } from "node:fs";
import { join } from "node:path";
import { InvalidRequestError } from "@berth/core";

/**
 * Refuses a volume's mount path that the sandbox's own files would redirect: every part of it
 * that already exists in the root filesystem (template, snapshot layer) must be a real
 * directory. A symlink there (`/workspace/p -> /proc`) would have the OCI runtime mount
 * somewhere else than the path that checkMountPath allowed, or fail late with a 500.
 */
export function checkMountTarget(rootfs: string, mountPath: string): void {
  let inside = "";
  for (const part of mountPath.split("/").filter(Boolean)) {
    inside += `/${part}`;
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(join(rootfs, inside));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const why = st.isSymbolicLink()
      ? `goes through a symlink (${inside}) in the sandbox's files`
      : st.isDirectory()
        ? undefined
        : `goes through ${inside}, which is not a directory in the sandbox's files`;
    if (why)
      throw new InvalidRequestError(`volume mountPath '${mountPath}' ${why}; mount it at a real directory`, {
        field: "volumes.mountPath",
      });
  }
}
