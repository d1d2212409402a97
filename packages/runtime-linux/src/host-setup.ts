import { accessSync, constants, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Logger, SandboxError } from "@berth/core";
import {
  DiskStore,
  ensureDefaultTemplate,
  ensureDiskSkeleton,
  RootfsPool,
  raiseInotifyLimits,
  releaseSlot,
  Volumes,
} from "@berth/linux-host";
import { type CgroupSetup, detectCgroups, prepareCgroupParent } from "./cgroups.js";
import type { RuntimeLayout } from "./paths.js";
import { safeReaddir } from "./records.js";
import { SharedFiles } from "./shared-files.js";
import type { TemplateStore } from "./templates/store.js";

/** What the local driver prepared on the host at start, for every sandbox after. */
export interface PreparedHost {
  cgroups: CgroupSetup;
  shared: SharedFiles;
  /** berth-init as sandboxes bind it (from `shared`). */
  sharedInit: string;
  pool: RootfsPool;
  volumes: Volumes;
  /** Where sandbox disks live and how they are copied. */
  disks: DiskStore;
}

/**
 * Prepares the host for sandboxes, idempotently: the driver's dirs, berth-init in the shared
 * files, the cgroup parent, per-uid limits, the default template, the disk pool and volumes.
 * Networks are the egress module's (started between the pool and the volumes by the caller).
 */
export async function prepareHost(o: {
  layout: RuntimeLayout;
  templates: TemplateStore;
  initBinary: string;
  defaultDiskMiB: number;
  diskPoolSize: number;
  diskCopyOnWrite: boolean;
  log: Logger;
}): Promise<PreparedHost> {
  const L = o.layout;
  for (const d of [L.root, L.runcRoot, L.templates, L.sandboxes])
    mkdirSync(d, { recursive: true, mode: 0o700 });
  if (L.sandbox("x".repeat(32)).socket.length > 107)
    throw new SandboxError("the data dir path is too long for unix sockets; choose a shorter BERTH_DATA_DIR");
  checkInitBinary(o.initBinary, o.log);
  const shared = new SharedFiles(join(L.root, "shared"), o.log);
  await shared.start();
  const sharedInit = shared.put("init", { source: o.initBinary }, 0o755);
  const cgroups = detectCgroups();
  prepareCgroupParent(cgroups, o.log);
  raiseInotifyLimits(o.log);
  if (ensureDefaultTemplate(L.templateRootfs("default"))) o.log.info({}, "built the default template");
  o.templates.sweep();
  ensureDiskSkeleton(L.diskSkeleton);
  await dropLegacyPool(L.legacyPool, o.log);
  // Before the pool: the sandboxes' dir may become a filesystem of its own.
  const disks = new DiskStore({
    dir: L.sandboxes,
    image: L.diskStoreImage,
    enabled: o.diskCopyOnWrite,
    beforeMount: () => dropLegacyPool(L.pool, o.log),
    log: o.log,
  });
  await disks.start();
  mkdirSync(L.pool, { recursive: true, mode: 0o700 });
  const pool = new RootfsPool(
    L.pool,
    o.defaultDiskMiB,
    o.diskPoolSize,
    L.diskSkeleton,
    L.templateRootfs("default"),
    o.log,
  );
  await pool.start();
  const volumes = new Volumes(join(L.root, "volumes"), o.log);
  return { cgroups, shared, sharedInit, pool, volumes, disks };
}

/** Releases and removes a pool's slots and its dir (the pool's old place; one about to be mounted over). */
async function dropLegacyPool(dir: string, log: Logger): Promise<void> {
  for (const name of safeReaddir(dir)) await releaseSlot(join(dir, name), log);
  rmSync(dir, { recursive: true, force: true });
}

/** Found at start, not at the first create: without it runc fails with a message about mounts. */
function checkInitBinary(path: string, log: Logger): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    log.error({ path }, "berth-init is missing or not executable");
    throw new SandboxError(
      "berth-init is not built: run `make -C packages/supervisor` (or set the runtime's initBinary)",
    );
  }
}
