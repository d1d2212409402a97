import { existsSync, readdirSync, readFileSync } from "node:fs";
import { NotFoundError, SANDBOX_ID } from "@berth/core";
import type { SandboxNet } from "@berth/linux-host";
import type { CgroupPaths } from "./cgroups.js";
import type { RuntimeLayout, SandboxPaths } from "./paths.js";

export { SANDBOX_ID } from "@berth/core";

/** What the driver records about a sandbox, in `info.json` beside it and as its RuntimeInfo. */
export interface SandboxInfo {
  ociRuntime: string;
  pid: number;
  diskMiB: number;
  cgroupPaths: CgroupPaths;
  /** Its template (the overlay's lower layer, mounted again by `wake`); absent in old records: default. */
  template?: string;
  /** A root sandbox (its own user namespace; wake mounts its root filesystem idmapped again). */
  root?: boolean;
  [key: string]: unknown;
}

/**
 * The files the driver keeps beside each sandbox (`info.json`, `net.json`), read back after a
 * restart: the one place the driver's modules learn what a sandbox is made of.
 */
export class SandboxRecords {
  constructor(private readonly layout: RuntimeLayout) {}

  /** The sandbox's paths; NotFoundError when nothing of it exists. */
  existing(id: string): SandboxPaths {
    const p = this.layout.sandbox(id);
    if (!SANDBOX_ID.test(id) || !existsSync(p.config)) throw new NotFoundError("sandbox", id);
    return p;
  }

  /** Its `info.json`, or null (not started yet, or gone). */
  info(id: string): SandboxInfo | null {
    return readJson<SandboxInfo>(this.layout.sandbox(id).info);
  }

  /** Its network (`net.json`), or null when it has none. */
  net(id: string): SandboxNet | null {
    return readJson<SandboxNet>(this.layout.sandbox(id).net);
  }

  /** The template a sandbox is made from. */
  template(id: string): string {
    return this.info(id)?.template ?? "default";
  }

  /** Ids of every sandbox with a directory here. */
  ids(): string[] {
    return safeReaddir(this.layout.sandboxes).filter((id) => SANDBOX_ID.test(id));
  }
}

/** A directory's names; none when it does not exist. */
export function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
}
