import { createHash } from "node:crypto";
import { chownSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import {
  CapabilityRuntime,
  ConflictError,
  checkMountPath,
  KeyedLock,
  type Logger,
  NotFoundError,
  type RuntimeInfo,
  type RuntimeStatus,
  type SandboxAddressing,
  SandboxError,
  type SandboxSpec,
  type SandboxStats,
  silentLogger,
} from "@berth/core";
import {
  canConnect,
  connectSupervisor,
  raiseInotifyLimits,
  SANDBOX_UID,
  safeReaddir,
} from "@berth/linux-host";
import { initBinaryPath } from "@berth/supervisor";
import { DockerTemplateCatalog } from "./catalog.js";
import { containerSpec, INIT_PATH } from "./container-spec.js";
import { DockerEgress } from "./egress.js";
import { Engine, isNotFound } from "./engine.js";
import { DockerInstance, LABEL, readOomKills, SANDBOX_ID } from "./instance.js";
import { templateRef } from "./templates.js";
import { DockerVolumes } from "./volumes.js";

/** Options of the Docker runtime. */
export interface DockerRuntimeOptions {
  /** Where the driver keeps sandboxes' socket and state dirs and volumes (on the Docker host). */
  dataDir: string;
  /** The Docker Engine's unix socket (default /var/run/docker.sock). */
  socketPath?: string;
  /** Host path of berth-init (default: the supervisor package's build). */
  initBinary?: string;
  /** Host TCP ports `open` sandboxes may reach on the host (the model gateway); nothing else there. */
  hostPorts?: number[];
  /** The resolver `allowlist` sandboxes' allowed names are asked of, `ip[:port]` (default: the host's). */
  dnsUpstream?: string;
  log?: Logger;
}

/**
 * Sandboxes as Docker containers (see container-spec.ts); berth-init listens on a unix socket
 * in a host dir bound into the container, which `connect` reaches. Templates are images
 * (templates.ts), volumes the local driver's loop-mounted images (volumes.ts), networks and
 * egress in egress.ts.
 */
export class DockerRuntime extends CapabilityRuntime {
  readonly name = "docker";
  private readonly engine: Engine;
  private readonly log: Logger;
  private readonly root: string;
  private readonly instance: DockerInstance;
  private readonly lock = new KeyedLock();
  private readonly volumes: DockerVolumes;
  protected readonly sandboxVolumes: DockerVolumes;
  protected readonly egress: DockerEgress;
  protected readonly catalog: DockerTemplateCatalog;
  readonly addressing: SandboxAddressing;
  private diskQuota = false;

  constructor(private readonly o: DockerRuntimeOptions) {
    super();
    this.root = join(o.dataDir, "runtime-docker");
    this.log = o.log ?? silentLogger;
    this.engine = new Engine(o.socketPath ?? "/var/run/docker.sock", this.log);
    const tag = createHash("sha256").update(this.root).digest("hex").slice(0, 8);
    this.instance = new DockerInstance(this.engine, this.root, tag);
    this.catalog = new DockerTemplateCatalog(this.engine, this.log, this.instance, this.lock);
    this.volumes = new DockerVolumes(this.root, this.log);
    this.sandboxVolumes = this.volumes;
    this.egress = new DockerEgress(this.instance, {
      lock: this.lock,
      hostPorts: o.hostPorts,
      dnsUpstream: o.dnsUpstream,
      log: this.log,
    });
    this.addressing = this.egress;
  }

  /**
   * Whether the engine enforces `diskMiB` (a size on the container's writable layer: overlay2
   * over xfs mounted with pquota, or btrfs); known after `start`. Without it, disk use is not limited.
   */
  get enforcesDiskLimit(): boolean {
    return this.diskQuota;
  }

  /** The bridge network `open` sandboxes join (inter-container traffic off). */
  get network(): string {
    return this.instance.network;
  }

  /** The bridge network `allowlist` sandboxes join: nothing passes but what each one's rules let through. */
  get allowlistNetwork(): string {
    return this.instance.allowlistNetwork;
  }

  /** Whether `open` sandboxes are filtered (nftables rules on the bridge); known after `start`. */
  get filtersOpenEgress(): boolean {
    return this.egress.filtersOpenEgress;
  }

  async start(): Promise<void> {
    for (const d of [this.root, join(this.root, "sandboxes"), join(this.root, "volumes")])
      mkdirSync(d, { recursive: true, mode: 0o711 });
    if (this.instance.paths("x".repeat(32)).socket.length > 107)
      throw new SandboxError(
        "the data dir path is too long for unix sockets; choose a shorter BERTH_DATA_DIR",
      );
    if (!existsSync(this.initBinary()))
      throw new SandboxError("berth-init is not built: run `make -C packages/supervisor`");
    await this.engine.json({ method: "GET", path: "/version", timeoutMs: 10_000 });
    // Containers run as uid 1000, which every sandbox shares: its per-uid inotify limits too.
    raiseInotifyLimits(this.log);
    await this.volumes.start();
    if (await this.catalog.ensureDefault()) this.log.info({}, "imported the default template image");
    await this.egress.start();
    this.diskQuota = await this.probeDiskQuota();
    if (!this.diskQuota)
      this.log.warn(
        {},
        "the docker storage driver has no size quota (it needs overlay2 over xfs with pquota, or btrfs): diskMiB is not enforced",
      );
    this.log.info(
      { engine: this.engine.socketPath, network: this.network, diskQuota: this.diskQuota },
      "docker runtime ready",
    );
  }

  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    return this.createUnderLock(spec, {
      lock: this.lock,
      log: this.log,
      build: () => this.build(spec, signal),
      teardown: () => this.teardown(spec.id),
    });
  }

  private async build(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    const networkMode = this.egress.networkFor(spec.network);
    const p = this.instance.paths(spec.id);
    if (existsSync(p.dir) || (await this.instance.container(spec.id)))
      throw new ConflictError(`sandbox '${spec.id}' already exists`);
    for (const d of [p.dir, p.sockDir, p.state]) mkdirSync(d, { recursive: true, mode: 0o700 });
    for (const d of [p.sockDir, p.state]) chownSync(d, SANDBOX_UID, SANDBOX_UID);
    this.egress.writePolicy(spec.id, spec.network);
    let image = templateRef(spec.template);
    let restoreImage = "";
    let { hostUsr } = await this.catalog.image(spec.template);
    if (spec.fromSnapshot) {
      restoreImage = await this.catalog.load(spec.fromSnapshot);
      image = restoreImage;
      hostUsr = (await this.catalog.imageLabels(image))[LABEL.hostUsr] === "1";
    }
    signal?.throwIfAborted();
    for (const v of spec.volumes ?? []) checkMountPath(v.mountPath);
    await this.engine.json({
      method: "POST",
      path: `/containers/create?name=${this.instance.containerName(spec.id)}`,
      json: containerSpec({
        spec,
        image,
        restoreImage,
        hostUsr,
        instanceTag: this.instance.tag,
        initBinary: this.initBinary(),
        paths: p,
        volumePath: (id) => this.volumes.hostPath(id),
        networkMode,
        diskQuota: this.diskQuota,
      }),
    });
    return this.startContainer(spec.id, signal);
  }

  /** Starts the container and resolves when berth-init accepts connections. */
  private async startContainer(id: string, signal?: AbortSignal): Promise<RuntimeInfo> {
    const p = this.instance.paths(id);
    rmSync(p.socket, { force: true });
    await this.engine.json({ method: "POST", path: `/containers/${this.instance.containerName(id)}/start` });
    const deadline = Date.now() + 30_000;
    for (let i = 0; ; i++) {
      signal?.throwIfAborted();
      if (await canConnect(p.socket)) break;
      if (i % 25 === 24) {
        const c = await this.instance.container(id);
        if (!c?.State.Running)
          throw new SandboxError(`the sandbox's init exited (${c?.State.Status ?? "gone"})`);
      }
      if (Date.now() > deadline) throw new SandboxError("the sandbox's supervisor did not start in 30 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const c = await this.instance.container(id);
    if (c) await this.egress.learnAddress(id, c);
    return { container: c?.Id, pid: c?.State.Pid };
  }

  async connect(id: string): Promise<Duplex> {
    if (!SANDBOX_ID.test(id)) throw new NotFoundError("sandbox", id);
    return connectSupervisor(this.instance.paths(id).socket, id);
  }

  async inspect(id: string): Promise<RuntimeStatus> {
    const c = SANDBOX_ID.test(id) ? await this.instance.container(id) : null;
    if (!c) return { state: existsSync(this.instance.paths(id).dir) ? "stopped" : "missing", oomKills: 0 };
    const oomKills = c.State.Pid > 0 ? readOomKills(c.State.Pid) : 0;
    await this.egress.observe(id, c);
    const state = c.State.Paused ? "paused" : c.State.Running ? "running" : "stopped";
    return { state, oomKills };
  }

  async stats(id: string): Promise<SandboxStats> {
    return this.instance.stats(await this.instance.existing(id, true));
  }

  pause(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      if (!c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/pause` });
    });
  }

  resume(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      if (c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/unpause` });
    });
  }

  /** Stops the container (every process ends, memory is freed) and keeps it, with its files and networks. */
  hibernate(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      if (c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/unpause` });
      if (c.State.Running)
        await this.engine.json({ method: "POST", path: `/containers/${c.Id}/stop?t=0`, timeoutMs: 60_000 });
      await this.egress.forget(id);
    });
  }

  wake(id: string): Promise<RuntimeInfo> {
    return this.lock.run(id, async () => {
      await this.instance.existing(id);
      return this.startContainer(id);
    });
  }

  /**
   * Commits the container (paused while committed, so consistent) to a temporary image and
   * writes that image as a `docker save` archive to `dest`; `create` loads it again.
   */
  snapshot(id: string, dest: string): Promise<number> {
    return this.lock.run(id, async () => {
      const c = await this.instance.existing(id);
      const hostUsr = c.Config.Labels?.[LABEL.hostUsr] ?? "0";
      return this.catalog.save(
        c.Id,
        `berth-snapshot/${this.instance.tag}`,
        { [LABEL.hostUsr]: hostUsr },
        dest,
      );
    });
  }

  destroy(id: string): Promise<void> {
    if (!SANDBOX_ID.test(id)) return Promise.resolve();
    return this.lock.run(id, () => this.teardown(id));
  }

  /** Removes the container, the image it was restored from (unless another uses it) and its host dirs. */
  private async teardown(id: string): Promise<void> {
    const c = await this.instance.container(id);
    if (c) {
      try {
        await this.engine.json({
          method: "DELETE",
          path: `/containers/${c.Id}?force=true&v=true`,
          timeoutMs: 60_000,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      const restored = c.Config.Labels?.[LABEL.restoreImage];
      if (restored) await this.catalog.removeImage(restored);
    }
    await this.egress.forget(id);
    rmSync(this.instance.paths(id).dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const c of await this.instance.containers()) {
      const id = c.Labels?.[LABEL.sandbox];
      if (id && SANDBOX_ID.test(id)) ids.add(id);
    }
    for (const name of safeReaddir(join(this.root, "sandboxes"))) if (SANDBOX_ID.test(name)) ids.add(name);
    return [...ids].sort();
  }

  async close(): Promise<void> {
    this.egress.close();
  }

  /** Removes this instance's networks and volumes (tests, uninstall; after every sandbox is gone). */
  async purgeHostState(): Promise<void> {
    await this.egress.purge();
    await this.volumes.purge();
  }

  /** Whether the engine takes a size for a container's writable layer: a container made (never started) with one. */
  private async probeDiskQuota(): Promise<boolean> {
    try {
      const c = await this.engine.json<{ Id: string }>({
        method: "POST",
        path: "/containers/create",
        json: {
          Image: templateRef("default"),
          Entrypoint: [INIT_PATH],
          HostConfig: { StorageOpt: { size: "64M" } },
        },
      });
      await this.engine.json({ method: "DELETE", path: `/containers/${c.Id}?force=true` }).catch(() => {});
      return true;
    } catch (err) {
      this.log.debug({ err: String(err) }, "no storage quota");
      return false;
    }
  }

  private initBinary(): string {
    return this.o.initBinary ?? initBinaryPath();
  }
}
