import { mkdirSync, writeFileSync } from "node:fs";
import { checkMountPath, type Logger, type SandboxSpec } from "@berth/core";
import { mountOverlay, mountPoints, prepareSlot, type RootfsPool, unmount } from "@berth/linux-host";
import { type CgroupSetup, sandboxCgroupsPath } from "./cgroups.js";
import type { LinuxEgress } from "./egress.js";
import { forgetSourceProcesses } from "./fork.js";
import { hardNofileLimit } from "./host.js";
import { checkMountTarget } from "./mount-target.js";
import { buildOciSpec, MAX_NOFILE } from "./oci-spec.js";
import type { RuntimeLayout } from "./paths.js";
import type { SandboxInfo } from "./records.js";
import type { RootSandboxes } from "./root-host.js";
import { idmapVolumes, mountRootFilesystem, unshiftLayer } from "./root-sandbox.js";
import { restoreLayer } from "./snapshot.js";
import type { TemplateStore } from "./templates/store.js";

/** What building a sandbox needs of the driver (prepared at its start). */
export interface BuildDeps {
  layout: RuntimeLayout;
  cgroups: CgroupSetup;
  pool: RootfsPool | null;
  egress: LinuxEgress;
  templates: TemplateStore;
  /** berth-init as sandboxes bind it. */
  initBinary: string;
  /** The resolver file sandboxes with a network bind. */
  resolvConf: string | undefined;
  /** Host path a volume is bound from. */
  volumeMount: (id: string) => string;
  hiddenPaths: string[] | undefined;
  /** Copies a sandbox's disk image to `dest` (a fork; see copySandboxDisk). */
  copyDisk: (sourceId: string, dest: string) => Promise<void>;
  /** Starts the written bundle under `cgroupsPath`; what the driver records of it. */
  launch: (cgroupsPath: string) => Promise<SandboxInfo>;
  /** Root sandboxes: the host id range and the idmap helper; `check` rejects when the host cannot. */
  root: RootSandboxes;
  log: Logger;
}

/**
 * Builds and starts one sandbox: its disk (a pooled slot, a fresh one, a copy of a fork's
 * source's, a snapshot's layer under the overlay), its network, its OCI bundle, then `launch`. Every step is undone by the
 * driver's teardown should a later one fail.
 */
export async function buildSandbox(
  spec: SandboxSpec,
  signal: AbortSignal | undefined,
  d: BuildDeps,
): Promise<SandboxInfo> {
  const cg = d.cgroups;
  const p = d.layout.sandbox(spec.id);
  const o = { log: d.log, signal };
  if (spec.root) await d.root.check();
  const t0 = performance.now();
  const { diskMiB } = spec.resources;
  const template = d.templates.rootfs(spec.template);
  // A pooled slot arrives formatted and mounted; any other size or template is built here, and
  // a fork's disk is a copy of its source's.
  const pooled =
    !spec.fromSandbox && spec.template === "default" && d.pool?.sizeMiB === diskMiB && d.pool.take(p.dir);
  const t1 = performance.now();
  if (spec.fromSandbox) {
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    await d.copyDisk(spec.fromSandbox, p.image);
  }
  if (!pooled) await prepareSlot(p.dir, diskMiB, d.layout.diskSkeleton, template, o);
  if (spec.fromSandbox) forgetSourceProcesses(p.disk);
  if (spec.fromSnapshot) {
    // The layer goes under the overlay, not through it (whiteouts stay whiteouts).
    await unmount(p.rootfs, await mountPoints(), d.log);
    await restoreLayer(spec.fromSnapshot, p.disk, o);
    // A root sandbox's layer holds shifted ids: back to host ids for a sandbox without root.
    if (!spec.root) unshiftLayer(`${p.disk}/upper`, d.root.ids.hostBase);
    await mountOverlay(template, p.disk, p.rootfs, o);
  }
  const hostUsr = d.templates.usesHostUsr(spec.template);
  const rootOpts = { ...d.root, hostUsr, ...o };
  const rootfs = spec.root ? await mountRootFilesystem(p, template, rootOpts) : undefined;
  const t2 = performance.now();
  const cgroupsPath = sandboxCgroupsPath(cg, spec.id);
  const net = await d.egress.attach(spec);
  const config = buildOciSpec({
    id: spec.id,
    rootfs: p.rootfs,
    resources: spec.resources,
    env: spec.env,
    initBinary: d.initBinary,
    stateDir: `${p.disk}/state`,
    cgroupsPath,
    cgroupNamespace: cg.namespace,
    nofile: Math.min(MAX_NOFILE, hardNofileLimit()),
    volumes: await volumeBinds(spec, p, d, rootOpts),
    netnsPath: net?.netnsPath,
    resolvConf: net && d.resolvConf,
    hostUsr,
    hiddenPaths: d.hiddenPaths,
    bootIdFile: p.bootId,
    root: rootfs && { hostBase: d.root.ids.hostBase, count: d.root.ids.count, usrSource: rootfs.usr },
  });
  writeFileSync(p.config, JSON.stringify(config), { mode: 0o600 });
  const info = await d.launch(cgroupsPath);
  const t3 = performance.now();
  const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
  d.log.debug(
    {
      id: spec.id,
      pooled,
      takeMs: ms(t0, t1),
      prepareMs: ms(t1, t2),
      runMs: ms(t2, t3),
      totalMs: ms(t0, t3),
    },
    "sandbox created",
  );
  return info;
}

/** The sandbox's volumes as binds (for a root sandbox, each through an idmapped mount of its own). */
async function volumeBinds(
  spec: SandboxSpec,
  p: { rootfs: string } & Parameters<typeof idmapVolumes>[0],
  d: BuildDeps,
  o: Parameters<typeof idmapVolumes>[2],
): Promise<{ source: string; destination: string }[]> {
  const vols = spec.volumes ?? [];
  for (const v of vols) {
    checkMountPath(v.mountPath);
    checkMountTarget(p.rootfs, v.mountPath);
  }
  const hostDirs = vols.map((v) => d.volumeMount(v.id));
  const sources = spec.root ? await idmapVolumes(p, hostDirs, o) : hostDirs;
  return vols.map((v, i) => ({ source: sources[i] as string, destination: v.mountPath }));
}
