import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import {
  CapabilityRuntime,
  ConflictError,
  InvalidRequestError,
  KeyedLock,
  type Logger,
  NotFoundError,
  type RuntimeInfo,
  type RuntimeStatus,
  type SandboxAddressing,
  SandboxError,
  type SandboxSpec,
  type SandboxStats,
  type SandboxVolumes,
  silentLogger,
} from "@berth/core";
import {
  connectSupervisor,
  type DiskStore,
  mountPoints,
  type RootfsPool,
  unmount,
  type Volumes,
} from "@berth/linux-host";
import { initBinaryPath } from "@berth/supervisor";
import { buildSandbox } from "./build.js";
import {
  type CgroupPaths,
  type CgroupSetup,
  readCgroupPaths,
  readCgroupStats,
  removeCgroups,
  sandboxCgroupsPath,
} from "./cgroups.js";
import { LinuxEgress, type LinuxNetworkOptions } from "./egress.js";
import { copySandboxDisk } from "./fork.js";
import { killLeftovers, setFrozen } from "./freezer.js";
import { initIsAlive, isFrozen, type OciRuntimeChoice, pickOciRuntime, readInitPid } from "./host.js";
import { prepareHost } from "./host-setup.js";
import { OciCli } from "./oci-cli.js";
import { RuntimeLayout } from "./paths.js";
import { SANDBOX_ID, type SandboxInfo, SandboxRecords, safeReaddir } from "./records.js";
import { RootSandboxes } from "./root-host.js";
import { mountRootFilesystem } from "./root-sandbox.js";
import type { SharedFiles } from "./shared-files.js";
import { sandboxStats } from "./stats.js";
import { LinuxSuspension } from "./suspension.js";
import { TemplateStore } from "./templates/store.js";
import { LinuxTemplates } from "./templates.js";

/** Options of the local Linux runtime. */
export interface LinuxRuntimeOptions {
  dataDir: string;
  /**
   * Sandbox networks (veth + nftables); absent or `enabled: false`: loopback only, `none` egress.
   * `cidr` unset: the range picked at an earlier start, else a free /16 (see claimSandboxRange).
   */
  network?: LinuxNetworkOptions;
  ociRuntime: OciRuntimeChoice;
  /** Formatted default-size disks kept ready. */
  diskPoolSize: number;
  /** Keep disks where reflink copies them (see DiskStore); default true. */
  diskCopyOnWrite?: boolean;
  /** Size of pooled disks (the server's default `diskMiB`); other sizes are made on demand. */
  defaultDiskMiB?: number;
  /** Host path of berth-init (default: the supervisor package's build). */
  initBinary?: string;
  /** Paths hidden in sandboxes that see the host's /usr (an empty read-only dir or file there). */
  hiddenPaths?: string[];
  /** First host uid/gid of the range root sandboxes map their ids to (ROOT_ID_COUNT ids). */
  rootIdBase?: number;
  /** Host path of berth-idmap (default: the supervisor package's build). */
  idmapBinary?: string;
  log?: Logger;
}

export { DEFAULT_ROOT_ID_BASE } from "./root-host.js";

/** The local driver: OCI bundles run by runc/crun, loop-mounted ext4 disks, cgroups v1 or v2. */
export class LinuxRuntime extends CapabilityRuntime {
  /** A fork copies its source's disk image (a reflink where the disk store can). */
  override readonly forksSandboxes = true;
  private readonly layout: RuntimeLayout;
  private readonly oci: OciCli;
  private readonly log: Logger;
  private cgroups: CgroupSetup | null = null;
  private pool: RootfsPool | null = null;
  private disks: DiskStore | null = null;
  private shared: SharedFiles | null = null;
  /** berth-init and the resolver file as sandboxes bind them (from `shared`). */
  private sharedInit = "";
  private sharedResolvConf: string | undefined;
  private volumes: Volumes | null = null;
  private readonly templates: TemplateStore;
  private readonly records: SandboxRecords;
  /** Create and destroy of one id never interleave. */
  private readonly lock = new KeyedLock();
  protected readonly egress: LinuxEgress;
  protected readonly catalog: LinuxTemplates;
  protected readonly sandboxVolumes: SandboxVolumes = {
    createVolume: (id, sizeMiB) => this.vols().create(id, sizeMiB),
    deleteVolume: (id) => this.vols().remove(id),
    volumeUsage: async (id) => this.vols().usedBytes(id),
  };
  private readonly suspension: LinuxSuspension;
  readonly addressing: SandboxAddressing;
  /** The root sandboxes' id range, idmapped views and host probe. */
  private readonly root: RootSandboxes;

  constructor(private readonly o: LinuxRuntimeOptions) {
    super();
    this.layout = new RuntimeLayout(o.dataDir);
    this.log = o.log ?? silentLogger;
    this.templates = new TemplateStore(this.layout.templates, this.log);
    this.records = new SandboxRecords(this.layout);
    this.oci = new OciCli(this.layout.runcRoot, this.log);
    const { layout, records, lock, log } = this;
    this.egress = new LinuxEgress({
      network: o.network,
      dataDir: o.dataDir,
      layout,
      records,
      lock,
      poolSize: Math.min(o.diskPoolSize, 16),
      log,
    });
    this.addressing = this.egress;
    this.root = new RootSandboxes({
      dataDir: o.dataDir,
      layout,
      hostBase: o.rootIdBase,
      idmapBinary: o.idmapBinary,
      log,
    });
    this.suspension = new LinuxSuspension({
      layout,
      records,
      oci: this.oci,
      lock,
      defaultDiskMiB: o.defaultDiskMiB ?? 5120,
      templateRootfs: (name) => this.templates.rootfs(name),
      launch: (id, diskMiB, cgroupsPath, template, root) =>
        this.launch(id, diskMiB, cgroupsPath, undefined, template, root),
      remountRoot: async (id, template) => {
        await mountRootFilesystem(this.layout.sandbox(id), this.templates.rootfs(template), {
          ...this.root,
          hostUsr: this.templates.usesHostUsr(template),
          log,
        });
      },
      log,
    });
    this.catalog = new LinuxTemplates(this.templates, {
      records,
      lock,
      stillDisk: (id, read) => this.suspension.stillDisk(id, read),
    });
  }

  /** The OCI runtime binary driven (`runc` or `crun`; known after `start`). */
  get name(): string {
    return this.oci.name;
  }

  async start(): Promise<void> {
    // Before anything else is made on the host: a range that clashes refuses the start here.
    await this.egress.claimRange();
    const host = await prepareHost({
      layout: this.layout,
      templates: this.templates,
      initBinary: this.o.initBinary ?? initBinaryPath(),
      defaultDiskMiB: this.o.defaultDiskMiB ?? 5120,
      diskPoolSize: this.o.diskPoolSize,
      diskCopyOnWrite: this.o.diskCopyOnWrite ?? true,
      log: this.log,
    });
    ({ cgroups: this.cgroups, shared: this.shared, sharedInit: this.sharedInit, pool: this.pool } = host);
    this.disks = host.disks;
    this.oci.name = pickOciRuntime(this.o.ociRuntime, host.cgroups.version);
    await this.egress.start();
    const resolvConf = this.egress.resolvConf;
    if (resolvConf)
      this.sharedResolvConf = host.shared.put("resolv.conf", { content: readFileSync(resolvConf, "utf8") });
    this.volumes = host.volumes;
    await host.volumes.start();
    this.log.info(
      {
        ociRuntime: this.name,
        cgroup: host.cgroups.version,
        network: this.egress.enabled,
        diskCopies: host.disks.mode,
      },
      "linux runtime ready",
    );
  }

  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    if (!SANDBOX_ID.test(spec.id))
      return Promise.reject(new InvalidRequestError("invalid sandbox id", { field: "id" }));
    return this.lock.run(spec.id, async () => {
      const p = this.layout.sandbox(spec.id);
      if (existsSync(p.dir) || this.oci.has(spec.id))
        throw new ConflictError(`sandbox '${spec.id}' already exists`);
      // Until its info.json names the template, this keeps the template from being deleted.
      const release = this.templates.hold(spec.template);
      try {
        return await this.build(spec, signal);
      } catch (err) {
        this.log.warn(
          { id: spec.id, err: String(err), stderr: (err as { stderr?: string }).stderr },
          "create failed",
        );
        await this.teardown(spec.id);
        throw err;
      } finally {
        release();
        // After the caller has its answer: spawning mkfs takes a few ms of this thread.
        setImmediate(() => this.pool?.refill());
      }
    });
  }

  /** Builds and starts one sandbox; every step is undone by `teardown` should a later one fail. */
  private build(spec: SandboxSpec, signal?: AbortSignal): Promise<SandboxInfo> {
    return buildSandbox(spec, signal, {
      layout: this.layout,
      cgroups: this.ready(),
      pool: this.pool,
      egress: this.egress,
      templates: this.templates,
      initBinary: this.sharedInit,
      resolvConf: this.sharedResolvConf,
      volumeMount: (id) => this.vols().mountPoint(id),
      copyDisk: (sourceId, dest) =>
        copySandboxDisk(
          {
            records: this.records,
            oci: this.oci,
            lock: this.lock,
            disks: () => this.diskStore(),
            log: this.log,
          },
          sourceId,
          dest,
          { template: spec.template, diskMiB: spec.resources.diskMiB },
        ),
      hiddenPaths: this.o.hiddenPaths,
      launch: (cgroupsPath) =>
        this.launch(spec.id, spec.resources.diskMiB, cgroupsPath, signal, spec.template, spec.root),
      root: this.root,
      log: this.log,
    });
  }

  /** Probed once, at the first ask: user namespaces allowed and idmapped mounts of the data dir work. */
  override rootUnavailable(): Promise<string | null> {
    return this.root.unavailable();
  }

  /** Starts the bundle's init with a fresh supervisor socket; records what it needs in `info.json`. */
  private async launch(
    id: string,
    diskMiB: number,
    cgroupsPath: string,
    signal?: AbortSignal,
    template = "default",
    root = false,
  ): Promise<SandboxInfo> {
    const p = this.layout.sandbox(id);
    await this.oci.runDetached(id, p, signal);
    const info: SandboxInfo = {
      ociRuntime: this.oci.name,
      pid: readInitPid(p.pidFile),
      diskMiB,
      cgroupPaths: this.cgroupPaths(id, cgroupsPath),
      template,
      ...(root ? { root: true } : {}),
    };
    writeFileSync(p.info, JSON.stringify(info), { mode: 0o600 });
    return info;
  }

  pause(id: string): Promise<void> {
    return this.suspension.pause(id);
  }

  resume(id: string): Promise<void> {
    return this.suspension.resume(id);
  }

  hibernate(id: string): Promise<void> {
    return this.suspension.hibernate(id);
  }

  wake(id: string): Promise<RuntimeInfo> {
    return this.suspension.wake(id);
  }

  snapshot(id: string, dest: string): Promise<number> {
    return this.suspension.snapshot(id, dest);
  }

  async connect(id: string): Promise<Duplex> {
    if (!SANDBOX_ID.test(id)) throw new NotFoundError("sandbox", id);
    return connectSupervisor(this.layout.sandbox(id).socket, id);
  }

  async inspect(id: string): Promise<RuntimeStatus> {
    if (!SANDBOX_ID.test(id)) return { state: "missing", oomKills: 0 };
    const info = this.info(id);
    const oomKills = info ? readCgroupStats(this.ready().version, info.cgroupPaths).oomKills : 0;
    // The common case costs two small /proc reads; runc (a process per call) only answers the rest.
    if (info && initIsAlive(info.pid, id) && !isFrozen(info.cgroupPaths))
      return { state: "running", oomKills };
    try {
      return { state: await this.oci.state(id), oomKills };
    } catch {
      return { state: existsSync(this.layout.sandbox(id).dir) ? "stopped" : "missing", oomKills };
    }
  }

  async stats(id: string): Promise<SandboxStats> {
    const info = SANDBOX_ID.test(id) ? this.info(id) : null;
    if (!info) throw new NotFoundError("sandbox", id);
    return sandboxStats(info, this.ready().version, this.layout.sandbox(id).disk);
  }

  destroy(id: string): Promise<void> {
    if (!SANDBOX_ID.test(id)) return Promise.resolve();
    return this.lock.run(id, () => this.teardown(id));
  }

  /** Removes whatever exists of a sandbox, in reverse order of `build`; tolerates any part missing. */
  private async teardown(id: string): Promise<void> {
    const p = this.layout.sandbox(id);
    const paths = this.info(id)?.cgroupPaths ?? this.cgroupPaths(id, sandboxCgroupsPath(this.ready(), id));
    if (this.oci.has(id)) {
      // A frozen sandbox is thawed first: its processes must run to die.
      if (isFrozen(paths)) await setFrozen(paths, false).catch(() => {});
      await this.oci.killAndDelete(id);
    }
    // Also when runc has no record of it (lost with a crashed run's files): thaw, then kill.
    await killLeftovers(paths, this.log);
    removeCgroups(paths, this.log);
    await this.egress.detach(id);
    for (const at of [p.rootfs, p.disk]) await unmount(at, await mountPoints(), this.log);
    // A root sandbox's idmapped mounts (template, /usr, volumes), deepest first.
    const idmapped = [...(await mountPoints())]
      .filter((m) => m.startsWith(`${p.dir}/`))
      .sort()
      .reverse();
    for (const at of idmapped) await unmount(at, new Set([at]), this.log);
    const left = [...(await mountPoints())].filter((m) => m === p.dir || m.startsWith(`${p.dir}/`));
    if (left.length > 0) {
      this.log.error({ id, mounts: left }, "sandbox mounts are still busy; leaving its files");
      throw new SandboxError(`could not unmount sandbox '${id}'`);
    }
    rmSync(p.dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const dir of [this.layout.sandboxes, this.layout.runcRoot])
      for (const name of safeReaddir(dir)) if (SANDBOX_ID.test(name)) ids.add(name);
    return [...ids].sort();
  }

  async close(): Promise<void> {
    await this.pool?.close();
    const noSandboxLeft = (await this.list()).length === 0;
    await this.egress.close(noSandboxLeft);
    if (noSandboxLeft) {
      await this.shared?.remove();
      // Root sandboxes' idmapped views of the templates and /usr: made again on the next root create.
      await this.root.views.removeAll();
      await this.disks?.close();
    }
  }

  private diskStore(): DiskStore {
    if (!this.disks) throw new SandboxError("the runtime is not started");
    return this.disks;
  }

  private vols(): Volumes {
    if (!this.volumes) throw new SandboxError("the runtime is not started");
    return this.volumes;
  }

  /**
   * Removes this instance's nftables table, every volume and the disk store's image (after every
   * sandbox is gone: tests, uninstall).
   */
  async purgeHostState(): Promise<void> {
    await this.egress.purge();
    await this.shared?.remove();
    await this.root.views.removeAll();
    for (const id of this.volumes?.list() ?? []) await this.volumes?.remove(id);
    // The pool's mounted slots are on the store: they go first.
    await this.pool?.close();
    await this.disks?.purge();
  }

  /** Resolves when the disk pool is full (tests and benchmarks). */
  async poolReady(): Promise<void> {
    await this.pool?.whenFull();
  }

  private ready(): CgroupSetup {
    if (!this.cgroups) throw new SandboxError("the runtime is not started");
    return this.cgroups;
  }

  /** runc records the real dirs (v1: one per controller); crun does not, so v2 derives it. */
  private cgroupPaths(id: string, cgroupsPath: string): CgroupPaths {
    const paths = readCgroupPaths(this.layout.runcRoot, id);
    if (Object.keys(paths).length === 0 && this.ready().version === 2)
      return { "": `/sys/fs/cgroup${cgroupsPath}` };
    return paths;
  }

  private info(id: string): SandboxInfo | null {
    return this.records.info(id);
  }
}
