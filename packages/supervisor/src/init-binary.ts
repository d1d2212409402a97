import { fileURLToPath } from "node:url";

/** Absolute host path of the built berth-init (`make -C packages/supervisor`); same from src/ and dist/. */
export function initBinaryPath(): string {
  return fileURLToPath(new URL("../build/berth-init", import.meta.url));
}

/** Absolute host path of berth-idmap, the host helper that makes idmapped mounts for root sandboxes. */
export function idmapBinaryPath(): string {
  return fileURLToPath(new URL("../build/berth-idmap", import.meta.url));
}
