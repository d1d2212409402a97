import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import {
  ConflictError,
  checkMountPath,
  type EgressMode,
  InvalidRequestError,
  KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotFoundError,
  type Runtime,
  type RuntimeInfo,
  type RuntimeStatus,
  type SandboxAddressing,
  SandboxError,
  type SandboxSpec,
  type SandboxStats,
  silentLogger,
  type TemplateFormat,
  type TemplateInfo,
} from "@berth/core";
import {
  diskUsedBytes,
  ensureDefaultTemplate,
  ensureDiskSkeleton,
  mountOverlay,
  mountPoints,
  prepareSlot,
  RootfsPool,
  raiseInotifyLimits,
  releaseSlot,
  run,
  tryRun,
  unmount,
  Volumes,
} from "@berth/linux-host";
import { initBinaryPath } from "@berth/supervisor";
import {
  type CgroupPaths,
  type CgroupSetup,
  detectCgroups,
  prepareCgroupParent,
  readCgroupPaths,
  readCgroupStats,
  removeCgroups,
  sandboxCgroupsPath,
} from "./cgroups.js";
import { LinuxEgress, type LinuxNetworkOptions } from "./egress.js";
import { setFrozen, withStillDisk } from "./freezer.js";
import {
  hardNofileLimit,
  initIsAlive,
  isFrozen,
  netBytes,
  type OciRuntimeChoice,
  pickOciRuntime,
  readInitPid,
} from "./host.js";
import { checkMountTarget } from "./mount-target.js";
import { buildOciSpec, MAX_NOFILE } from "./oci-spec.js";
import { RuntimeLayout, type SandboxPaths } from "./paths.js";
import { SANDBOX_ID, type SandboxInfo, SandboxRecords, safeReaddir } from "./records.js";
import { SharedFiles } from "./shared-files.js";
import { captureLayer, restoreLayer } from "./snapshot.js";
import { listenForSandbox } from "./socket.js";
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
  /** Size of pooled disks (the server's default `diskMiB`); other sizes are made on demand. */
  defaultDiskMiB?: number;
  /** Host path of berth-init (default: the supervisor package's build). */
  initBinary?: string;
  /** Paths hidden in sandboxes that see the host's /usr (an empty read-only dir or file there). */
  hiddenPaths?: string[];
  log?: Logger;
}

/** The local driver: OCI bundles run by runc/crun, loop-mounted ext4 disks, cgroups v1 or v2. */
export class LinuxRuntime implements Runtime {
  name = "runc";
  private readonly layout: RuntimeLayout;
  private readonly log: Logger;
  private cgroups: CgroupSetup | null = null;
  private pool: RootfsPool | null = null;
  private shared: SharedFiles | null = null;
  /** berth-init and the resolver file as sandboxes bind them (from `shared`). */
  private sharedInit = "";
  private sharedResolvConf: string | undefined;
  private volumes: Volumes | null = null;
  private readonly templates: TemplateStore;
  private readonly records: SandboxRecords;
  /** Create and destroy of one id never interleave. */
  private readonly lock = new KeyedLock();
  private readonly egress: LinuxEgress;
  private readonly catalog: LinuxTemplates;
  readonly addressing: SandboxAddressing;

  constructor(private readonly o: LinuxRuntimeOptions) {
    this.layout = new RuntimeLayout(o.dataDir);
    this.log = o.log ?? silentLogger;
    this.templates = new TemplateStore(this.layout.templates, this.log);
    this.records = new SandboxRecords(this.layout);
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
    this.catalog = new LinuxTemplates(this.templates, {
      records,
      lock,
      stillDisk: (id, read) => this.stillDisk(id, read),
    });
  }

  /** Egress modes this host can enforce (all three once sandbox networks are set up). */
  get egressModes(): readonly EgressMode[] {
    return this.egress.egressModes;
  }

  async start(): Promise<void> {
    const L = this.layout;
    for (const d of [L.root, L.runcRoot, L.templates, L.pool, L.sandboxes])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    if (L.sandbox("x".repeat(32)).socket.length > 107)
      throw new SandboxError(
        "the data dir path is too long for unix sockets; choose a shorter BERTH_DATA_DIR",
      );
    this.checkInitBinary();
    // Before anything is made on the host: a range that clashes refuses the start here.
    await this.egress.claimRange();
    this.shared = new SharedFiles(join(L.root, "shared"), this.log);
    await this.shared.start();
    this.sharedInit = this.shared.put("init", { source: this.initBinary() }, 0o755);
    this.cgroups = detectCgroups();
    this.name = pickOciRuntime(this.o.ociRuntime, this.cgroups.version);
    prepareCgroupParent(this.cgroups, this.log);
    raiseInotifyLimits(this.log);
    if (ensureDefaultTemplate(L.templateRootfs("default"))) this.log.info({}, "built the default template");
    this.templates.sweep();
    ensureDiskSkeleton(L.diskSkeleton);
    const size = this.o.defaultDiskMiB ?? 5120;
    this.pool = new RootfsPool(
      L.pool,
      size,
      this.o.diskPoolSize,
      L.diskSkeleton,
      L.templateRootfs("default"),
      this.log,
    );
    await this.pool.start();
    await this.egress.start();
    const resolvConf = this.egress.resolvConf;
    if (resolvConf)
      this.sharedResolvConf = this.shared.put("resolv.conf", { content: readFileSync(resolvConf, "utf8") });
    this.volumes = new Volumes(join(L.root, "volumes"), this.log);
    await this.volumes.start();
    this.log.info(
      { ociRuntime: this.name, cgroup: this.cgroups.version, network: this.egress.enabled },
      "linux runtime ready",
    );
  }

  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    if (!SANDBOX_ID.test(spec.id))
      return Promise.reject(new InvalidRequestError("invalid sandbox id", { field: "id" }));
    return this.lock.run(spec.id, async () => {
      const p = this.layout.sandbox(spec.id);
      if (existsSync(p.dir) || existsSync(`${this.layout.runcRoot}/${spec.id}`))
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
  private async build(spec: SandboxSpec, signal?: AbortSignal): Promise<SandboxInfo> {
    const cg = this.ready();
    const p = this.layout.sandbox(spec.id);
    const o = { log: this.log, signal };
    const t0 = performance.now();
    const { diskMiB } = spec.resources;
    const template = this.template(spec.template);
    // A pooled slot arrives formatted and mounted; any other size or template is built here.
    const pooled = spec.template === "default" && this.pool?.sizeMiB === diskMiB && this.pool.take(p.dir);
    const t1 = performance.now();
    if (!pooled) await prepareSlot(p.dir, diskMiB, this.layout.diskSkeleton, template, o);
    if (spec.fromSnapshot) {
      // The layer goes under the overlay, not through it (whiteouts stay whiteouts).
      await unmount(p.rootfs, await mountPoints(), this.log);
      await restoreLayer(spec.fromSnapshot, p.disk, o);
      await mountOverlay(template, p.disk, p.rootfs, o);
    }
    const t2 = performance.now();
    const cgroupsPath = sandboxCgroupsPath(cg, spec.id);
    const net = await this.egress.attach(spec);
    const config = buildOciSpec({
      id: spec.id,
      rootfs: p.rootfs,
      resources: spec.resources,
      env: spec.env,
      initBinary: this.sharedInit,
      stateDir: `${p.disk}/state`,
      cgroupsPath,
      cgroupNamespace: cg.namespace,
      nofile: Math.min(MAX_NOFILE, hardNofileLimit()),
      volumes: (spec.volumes ?? []).map((v) => {
        checkMountPath(v.mountPath);
        checkMountTarget(p.rootfs, v.mountPath);
        return { source: this.vols().mountPoint(v.id), destination: v.mountPath };
      }),
      netnsPath: net?.netnsPath,
      resolvConf: net && this.sharedResolvConf,
      hostUsr: this.templates.usesHostUsr(spec.template),
      hiddenPaths: this.o.hiddenPaths,
    });
    writeFileSync(p.config, JSON.stringify(config), { mode: 0o600 });
    const info = await this.launch(spec.id, diskMiB, cgroupsPath, o, spec.template);
    const t3 = performance.now();
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    this.log.debug(
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

  /** Starts the bundle's init with a fresh supervisor socket; records what it needs in `info.json`. */
  private async launch(
    id: string,
    diskMiB: number,
    cgroupsPath: string,
    o: { log: Logger; signal?: AbortSignal },
    template = "default",
  ): Promise<SandboxInfo> {
    const p = this.layout.sandbox(id);
    const sock = await listenForSandbox(p.socket);
    try {
      await run(
        this.name,
        [
          "--root",
          this.layout.runcRoot,
          "run",
          "-d",
          "--preserve-fds",
          "1",
          "--pid-file",
          p.pidFile,
          "--bundle",
          p.dir,
          id,
        ],
        { ...o, timeoutMs: 30_000, outputFile: p.output, extraFds: [sock.fd] },
      );
    } finally {
      await sock.close();
    }
    const info: SandboxInfo = {
      ociRuntime: this.name,
      pid: readInitPid(p.pidFile),
      diskMiB,
      cgroupPaths: this.cgroupPaths(id, cgroupsPath),
      template,
    };
    writeFileSync(p.info, JSON.stringify(info), { mode: 0o600 });
    return info;
  }

  /** Freezes every process of the sandbox (cgroup freezer): memory stays, CPU drops to zero. */
  pause(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      this.existing(id);
      await setFrozen(this.info(id)?.cgroupPaths ?? {}, true);
    });
  }

  /** Thaws a paused sandbox. */
  resume(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      this.existing(id);
      await setFrozen(this.info(id)?.cgroupPaths ?? {}, false);
    });
  }

  /**
   * Ends every process and frees the sandbox's memory, cgroups and loop device; its disk image,
   * bundle and network (address, rules) stay, so `wake` brings it back with the same files.
   */
  hibernate(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      this.existing(id);
      const root = ["--root", this.layout.runcRoot];
      const paths = this.info(id)?.cgroupPaths ?? {};
      await tryRun(this.name, [...root, "kill", "-a", id, "KILL"], { log: this.log, timeoutMs: 10_000 });
      await tryRun(this.name, [...root, "delete", "--force", id], { log: this.log, timeoutMs: 30_000 });
      removeCgroups(paths, this.log);
      await releaseSlot(this.layout.sandbox(id).dir, this.log);
    });
  }

  /** Starts a hibernated sandbox again from its kept disk and bundle. */
  wake(id: string): Promise<RuntimeInfo> {
    return this.lock.run(id, async () => {
      const p = this.existing(id);
      const config = JSON.parse(readFileSync(p.config, "utf8")) as { linux: { cgroupsPath: string } };
      const diskMiB = this.info(id)?.diskMiB ?? this.o.defaultDiskMiB ?? 5120;
      const template = this.info(id)?.template ?? "default";
      const o = { log: this.log };
      await prepareSlot(p.dir, diskMiB, this.layout.diskSkeleton, this.template(template), o);
      try {
        return await this.launch(id, diskMiB, config.linux.cgroupsPath, o, template);
      } catch (err) {
        await releaseSlot(p.dir, this.log);
        throw err;
      }
    });
  }

  /**
   * Captures the sandbox's writable layer into `dest` (a zstd tar). A running sandbox is frozen
   * while it is copied, so the snapshot is consistent; a hibernated one has its disk mounted
   * for the copy. Resolves with the archive's size.
   */
  snapshot(id: string, dest: string): Promise<number> {
    return this.lock.run(id, () => this.stillDisk(id, (disk) => captureLayer(disk, dest, { log: this.log })));
  }

  /** Runs `read` on the sandbox's disk while nothing writes to it (see withStillDisk). */
  private stillDisk<T>(id: string, read: (disk: string) => Promise<T>): Promise<T> {
    const p = this.existing(id);
    return withStillDisk(
      { image: p.image, mountPoint: p.disk },
      {
        cgroupPaths: this.info(id)?.cgroupPaths ?? {},
        running: existsSync(`${this.layout.runcRoot}/${id}`),
        log: this.log,
      },
      () => read(p.disk),
    );
  }

  /** The sandbox's paths; NotFoundError when nothing of it exists. */
  private existing(id: string): SandboxPaths {
    const p = this.layout.sandbox(id);
    if (!SANDBOX_ID.test(id) || !existsSync(p.config)) throw new NotFoundError("sandbox", id);
    return p;
  }

  async connect(id: string): Promise<Duplex> {
    if (!SANDBOX_ID.test(id)) throw new NotFoundError("sandbox", id);
    const path = this.layout.sandbox(id).socket;
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once("connect", () => {
        s.removeAllListeners("error");
        resolve(s);
      });
      s.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") reject(new NotFoundError("sandbox", id));
        else reject(new SandboxError("the sandbox's supervisor is not reachable"));
      });
    });
  }

  async inspect(id: string): Promise<RuntimeStatus> {
    if (!SANDBOX_ID.test(id)) return { state: "missing", oomKills: 0 };
    const info = this.info(id);
    const oomKills = info ? readCgroupStats(this.ready().version, info.cgroupPaths).oomKills : 0;
    // The common case costs two small /proc reads; runc (a process per call) only answers the rest.
    if (info && initIsAlive(info.pid, id) && !isFrozen(info.cgroupPaths))
      return { state: "running", oomKills };
    try {
      const { stdout } = await run(this.name, ["--root", this.layout.runcRoot, "state", id], {
        log: this.log,
        timeoutMs: 10_000,
      });
      const status = (JSON.parse(stdout) as { status?: string }).status;
      const state = status === "running" ? "running" : status === "paused" ? "paused" : "stopped";
      return { state, oomKills };
    } catch {
      return { state: existsSync(this.layout.sandbox(id).dir) ? "stopped" : "missing", oomKills };
    }
  }

  async stats(id: string): Promise<SandboxStats> {
    const info = SANDBOX_ID.test(id) ? this.info(id) : null;
    if (!info) throw new NotFoundError("sandbox", id);
    const cg = readCgroupStats(this.ready().version, info.cgroupPaths);
    const net = netBytes(info.pid);
    return {
      cpuSeconds: cg.cpuSeconds,
      memoryBytes: cg.memoryBytes,
      memoryPeakBytes: cg.memoryPeakBytes,
      diskBytes: diskUsedBytes(this.layout.sandbox(id).disk),
      pids: cg.pids,
      netRxBytes: net.rx,
      netTxBytes: net.tx,
    };
  }

  destroy(id: string): Promise<void> {
    if (!SANDBOX_ID.test(id)) return Promise.resolve();
    return this.lock.run(id, () => this.teardown(id));
  }

  /** Removes whatever exists of a sandbox, in reverse order of `build`; tolerates any part missing. */
  private async teardown(id: string): Promise<void> {
    const p = this.layout.sandbox(id);
    const root = ["--root", this.layout.runcRoot];
    const paths = this.info(id)?.cgroupPaths ?? this.cgroupPaths(id, sandboxCgroupsPath(this.ready(), id));
    if (existsSync(`${this.layout.runcRoot}/${id}`)) {
      // A frozen sandbox is thawed first: its processes must run to die.
      if (isFrozen(paths)) await setFrozen(paths, false).catch(() => {});
      // delete --force SIGKILLs the init; the pid namespace takes every other process with it.
      await tryRun(this.name, [...root, "kill", "-a", id, "KILL"], { log: this.log, timeoutMs: 10_000 });
      await tryRun(this.name, [...root, "delete", "--force", id], { log: this.log, timeoutMs: 30_000 });
    }
    removeCgroups(paths, this.log);
    await this.egress.detach(id);
    for (const at of [p.rootfs, p.disk]) await unmount(at, await mountPoints(), this.log);
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
    if (noSandboxLeft) await this.shared?.remove();
  }

  createVolume(id: string, sizeMiB: number): Promise<void> {
    return this.vols().create(id, sizeMiB);
  }

  deleteVolume(id: string): Promise<void> {
    return this.vols().remove(id);
  }

  async volumeUsage(id: string): Promise<number> {
    return this.vols().usedBytes(id);
  }

  private vols(): Volumes {
    if (!this.volumes) throw new SandboxError("the runtime is not started");
    return this.volumes;
  }

  /** Removes this instance's nftables table and every volume (after every sandbox is gone: tests, uninstall). */
  async purgeHostState(): Promise<void> {
    await this.egress.purge();
    await this.shared?.remove();
    for (const id of this.volumes?.list() ?? []) await this.volumes?.remove(id);
  }

  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    return this.egress.setNetworkPolicy(id, policy);
  }

  /** Resolves when the disk pool is full (tests and benchmarks). */
  async poolReady(): Promise<void> {
    await this.pool?.whenFull();
  }

  private ready(): CgroupSetup {
    if (!this.cgroups) throw new SandboxError("the runtime is not started");
    return this.cgroups;
  }

  /** The lower layer for a template name; NotFoundError when there is no such template. */
  private template(name: string): string {
    return this.templates.rootfs(name);
  }

  listTemplates(): Promise<TemplateInfo[]> {
    return this.catalog.listTemplates();
  }

  getTemplate(name: string): Promise<TemplateInfo | null> {
    return this.catalog.getTemplate(name);
  }

  importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    return this.catalog.importTemplate(name, file, format, signal);
  }

  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.catalog.templateFromSandbox(id, name);
  }

  deleteTemplate(name: string): Promise<void> {
    return this.catalog.deleteTemplate(name);
  }

  private initBinary(): string {
    return this.o.initBinary ?? initBinaryPath();
  }

  /** Found at start, not at the first create: without it runc fails with a message about mounts. */
  private checkInitBinary(): void {
    try {
      accessSync(this.initBinary(), constants.X_OK);
    } catch {
      this.log.error({ path: this.initBinary() }, "berth-init is missing or not executable");
      throw new SandboxError(
        "berth-init is not built: run `make -C packages/supervisor` (or set the runtime's initBinary)",
      );
    }
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
