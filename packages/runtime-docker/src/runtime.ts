import { createHash, randomBytes } from "node:crypto";
import {
  chownSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  ConflictError,
  checkMountPath,
  type EgressMode,
  InvalidRequestError,
  inCidr,
  KeyedLock,
  type Logger,
  type NetworkPolicy,
  NotFoundError,
  NotSupportedError,
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
  applyNft,
  hostResolver,
  hostResolvers,
  raiseInotifyLimits,
  SANDBOX_UID,
  Volumes,
} from "@berth/linux-host";
import { initBinaryPath } from "@berth/supervisor";
import { AllowlistEgress } from "./allowlist.js";
import { Engine, isNotFound } from "./engine.js";
import { bridgeRulesScript, forbiddenRanges, removeBridgeRulesScript } from "./firewall.js";
import { DockerTemplates, templateRef } from "./templates.js";

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

/** Inside the container: berth-init, its state dir and the dir of its listening socket. */
const INIT_PATH = "/.berth/init";
const STATE_DIR = "/run/berth";
const SOCKET_DIR = "/run/berth-sock";
const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const SHM_BYTES = 64 * 1024 * 1024;

/** Labels every container of this driver carries. */
const L = {
  instance: "berth.instance",
  sandbox: "berth.sandbox",
  template: "berth.template",
  hostUsr: "berth.host-usr",
  restoreImage: "berth.restore-image",
} as const;

interface ContainerJson {
  Id: string;
  State: { Status: string; Running: boolean; Paused: boolean; Pid: number };
  Config: { Labels: Record<string, string> | null };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> | null };
  SizeRw?: number;
}

/**
 * Sandboxes as Docker containers: berth-init (bound from the host) is the entrypoint, running as
 * uid 1000 with no capabilities, no_new_privs and Docker's default seccomp profile; it listens
 * on a unix socket in a host dir bound into the container, which `connect` reaches. Templates
 * are images; egress `none` is NetworkMode none, `open` a bridge network of this instance,
 * `allowlist` a second bridge where each sandbox's source address has its own rules.
 */
export class DockerRuntime implements Runtime {
  readonly name = "docker";
  private readonly engine: Engine;
  private readonly log: Logger;
  private readonly root: string;
  /** Labels and names of this instance (several servers may share one engine). */
  private readonly tag: string;
  private readonly lock = new KeyedLock();
  private readonly addresses = new Map<string, string>();
  /** The instance's bridge network: its subnet, and the host's address on it (learnt at start). */
  private bridge: { subnet: string; gateway: string | null } | undefined;
  private readonly templates: DockerTemplates;
  private readonly volumes: Volumes;
  private diskQuota = false;
  private filtered = false;
  /** `allowlist` egress, when nftables filters the bridges (else that mode answers 501). */
  private allowlist: AllowlistEgress | undefined;
  /** The allowlist bridge network: its subnet and the host's address on it (learnt at start). */
  private allowBridge: { subnet: string; gateway: string | null } | undefined;

  constructor(private readonly o: DockerRuntimeOptions) {
    this.root = join(o.dataDir, "runtime-docker");
    this.log = o.log ?? silentLogger;
    this.engine = new Engine(o.socketPath ?? "/var/run/docker.sock", this.log);
    this.tag = createHash("sha256").update(this.root).digest("hex").slice(0, 8);
    this.templates = new DockerTemplates(this.engine, this.log);
    this.volumes = new Volumes(join(this.root, "volumes"), this.log);
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
    return `berth-${this.tag}`;
  }

  /** The bridge network `allowlist` sandboxes join: nothing passes but what each one's rules let through. */
  get allowlistNetwork(): string {
    return `berth-${this.tag}-allow`;
  }

  /** The Linux bridge of the allowlist network (at most 15 characters: `berth-<tag>a`). */
  private get allowlistBridge(): string {
    return `${this.network}a`;
  }

  get egressModes(): readonly EgressMode[] {
    return this.allowlist ? ["none", "open", "allowlist"] : ["none", "open"];
  }

  async start(): Promise<void> {
    for (const d of [this.root, join(this.root, "sandboxes"), join(this.root, "volumes")])
      mkdirSync(d, { recursive: true, mode: 0o711 });
    if (this.paths("x".repeat(32)).socket.length > 107)
      throw new SandboxError(
        "the data dir path is too long for unix sockets; choose a shorter BERTH_DATA_DIR",
      );
    if (!existsSync(this.initBinary()))
      throw new SandboxError("berth-init is not built: run `make -C packages/supervisor`");
    await this.engine.json({ method: "GET", path: "/version", timeoutMs: 10_000 });
    // Containers run as uid 1000, which every sandbox shares: its per-uid inotify limits too.
    raiseInotifyLimits(this.log);
    await this.volumes.start();
    if (await this.templates.ensureDefault()) this.log.info({}, "imported the default template image");
    await this.ensureNetwork(this.network, this.network);
    await this.ensureNetwork(this.allowlistNetwork, this.allowlistBridge);
    await this.startFirewall();
    await this.registerAllowlisted();
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
    if (!ID.test(spec.id))
      return Promise.reject(new InvalidRequestError("invalid sandbox id", { field: "id" }));
    return this.lock.run(spec.id, async () => {
      try {
        return await this.build(spec, signal);
      } catch (err) {
        this.log.warn({ id: spec.id, err: String(err) }, "create failed");
        await this.teardown(spec.id).catch(() => {});
        throw err;
      }
    });
  }

  private async build(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo> {
    this.checkEgress(spec.network);
    if (existsSync(this.paths(spec.id).dir) || (await this.container(spec.id)))
      throw new ConflictError(`sandbox '${spec.id}' already exists`);
    const p = this.paths(spec.id);
    for (const d of [p.dir, p.sockDir, p.state]) mkdirSync(d, { recursive: true, mode: 0o700 });
    for (const d of [p.sockDir, p.state]) chownSync(d, SANDBOX_UID, SANDBOX_UID);
    this.writePolicy(spec.id, spec.network);
    let image = templateRef(spec.template);
    let restoreImage = "";
    const base = await this.templates.image(spec.template);
    let hostUsr = base.hostUsr;
    if (spec.fromSnapshot) {
      restoreImage = await this.templates.load(spec.fromSnapshot);
      image = restoreImage;
      hostUsr = (await this.templates.imageLabels(image))[L.hostUsr] === "1";
    }
    signal?.throwIfAborted();
    const memory = spec.resources.memoryMiB * 1024 * 1024;
    const env = {
      ...spec.env,
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: "/home/user",
      USER: "user",
      BERTH_STATE_DIR: STATE_DIR,
      BERTH_LISTEN_PATH: `${SOCKET_DIR}/sock`,
    };
    const binds = [
      `${this.initBinary()}:${INIT_PATH}:ro`,
      `${p.sockDir}:${SOCKET_DIR}:rw`,
      `${p.state}:${STATE_DIR}:rw`,
      ...(hostUsr ? ["/usr:/usr:ro"] : []),
      ...(spec.volumes ?? []).map((v) => {
        checkMountPath(v.mountPath);
        return `${this.volumeDir(v.id)}:${v.mountPath}:rw`;
      }),
    ];
    await this.engine.json({
      method: "POST",
      path: `/containers/create?name=${this.containerName(spec.id)}`,
      json: {
        Image: image,
        Entrypoint: [INIT_PATH],
        User: `${SANDBOX_UID}:${SANDBOX_UID}`,
        WorkingDir: "/workspace",
        Hostname: spec.id,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          [L.instance]: this.tag,
          [L.sandbox]: spec.id,
          [L.template]: spec.template,
          [L.hostUsr]: hostUsr ? "1" : "0",
          [L.restoreImage]: restoreImage,
        },
        HostConfig: {
          Binds: binds,
          NetworkMode: this.networkFor(spec.network),
          NanoCpus: Math.max(10_000_000, Math.round(spec.resources.cpus * 1e9)),
          Memory: memory,
          MemorySwap: memory,
          PidsLimit: spec.resources.pids,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          ShmSize: Math.min(SHM_BYTES, memory),
          IpcMode: "private",
          ...(this.diskQuota ? { StorageOpt: { size: `${spec.resources.diskMiB}M` } } : {}),
          RestartPolicy: { Name: "no" },
          LogConfig: { Type: "none", Config: {} },
        },
      },
    });
    return this.startContainer(spec.id, signal);
  }

  /** Starts the container and resolves when berth-init accepts connections. */
  private async startContainer(id: string, signal?: AbortSignal): Promise<RuntimeInfo> {
    const p = this.paths(id);
    rmSync(p.socket, { force: true });
    await this.engine.json({ method: "POST", path: `/containers/${this.containerName(id)}/start` });
    const deadline = Date.now() + 30_000;
    for (let i = 0; ; i++) {
      signal?.throwIfAborted();
      if (await canConnect(p.socket)) break;
      if (i % 25 === 24) {
        const c = await this.container(id);
        if (!c?.State.Running)
          throw new SandboxError(`the sandbox's init exited (${c?.State.Status ?? "gone"})`);
      }
      if (Date.now() > deadline) throw new SandboxError("the sandbox's supervisor did not start in 30 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const c = await this.container(id);
    if (c) await this.learnAddress(id, c);
    return { container: c?.Id, pid: c?.State.Pid };
  }

  /**
   * Records the container's address and, on the allowlist bridge, puts its rules in force for
   * that address (until then its packets are dropped there). Off that bridge, it has none.
   * `policy`: the one just set (else the one kept beside the sandbox).
   */
  private async learnAddress(id: string, c: ContainerJson, policy?: NetworkPolicy): Promise<void> {
    const nets = c.NetworkSettings.Networks ?? {};
    const ip = Object.values(nets).find((n) => n.IPAddress)?.IPAddress;
    if (ip) this.addresses.set(id, ip);
    else this.addresses.delete(id);
    const allowIp = nets[this.allowlistNetwork]?.IPAddress;
    if (allowIp && this.allowlist) await this.allowlist.register(id, allowIp, policy ?? this.readPolicy(id));
    else await this.allowlist?.unregister(id);
  }

  async connect(id: string): Promise<Duplex> {
    if (!ID.test(id)) throw new NotFoundError("sandbox", id);
    const path = this.paths(id).socket;
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
    const c = ID.test(id) ? await this.container(id) : null;
    if (!c) return { state: existsSync(this.paths(id).dir) ? "stopped" : "missing", oomKills: 0 };
    const oomKills = c.State.Pid > 0 ? readOomKills(c.State.Pid) : 0;
    // After a server restart this is where a sandbox's address is learnt again.
    const ip = Object.values(c.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
    if (ip && c.State.Running) this.addresses.set(id, ip);
    // A container that stopped on its own gives its address back: so do its rules.
    if (!c.State.Running && this.allowlist?.registered(id)) await this.allowlist.unregister(id);
    const state = c.State.Paused ? "paused" : c.State.Running ? "running" : "stopped";
    return { state, oomKills };
  }

  async stats(id: string): Promise<SandboxStats> {
    const c = await this.existing(id, true);
    const s = await this.engine.json<DockerStats>({
      method: "GET",
      path: `/containers/${c.Id}/stats?stream=false&one-shot=true`,
    });
    const nets = Object.values(s.networks ?? {});
    const memoryBytes = s.memory_stats?.usage ?? 0;
    return {
      cpuSeconds: (s.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e9,
      memoryBytes,
      memoryPeakBytes: s.memory_stats?.max_usage ?? memoryBytes,
      diskBytes: c.SizeRw ?? 0,
      pids: s.pids_stats?.current ?? 0,
      netRxBytes: nets.reduce((a, n) => a + (n.rx_bytes ?? 0), 0),
      netTxBytes: nets.reduce((a, n) => a + (n.tx_bytes ?? 0), 0),
    };
  }

  pause(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.existing(id);
      if (!c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/pause` });
    });
  }

  resume(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.existing(id);
      if (c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/unpause` });
    });
  }

  /** Stops the container (every process ends, memory is freed) and keeps it, with its files and networks. */
  hibernate(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const c = await this.existing(id);
      if (c.State.Paused) await this.engine.json({ method: "POST", path: `/containers/${c.Id}/unpause` });
      if (c.State.Running)
        await this.engine.json({ method: "POST", path: `/containers/${c.Id}/stop?t=0`, timeoutMs: 60_000 });
      this.addresses.delete(id);
      await this.allowlist?.unregister(id);
    });
  }

  wake(id: string): Promise<RuntimeInfo> {
    return this.lock.run(id, async () => {
      await this.existing(id);
      return this.startContainer(id);
    });
  }

  /**
   * Commits the container (paused while committed, so consistent) to a temporary image and
   * writes that image as a `docker save` archive to `dest`; `create` loads it again.
   */
  snapshot(id: string, dest: string): Promise<number> {
    return this.lock.run(id, async () => {
      const c = await this.existing(id);
      const ref = `berth-snapshot/${this.tag}-${randomBytes(6).toString("hex")}:latest`;
      const [repo = ref, tagName = "latest"] = ref.split(":");
      await this.engine.json({
        method: "POST",
        path: `/commit?container=${c.Id}&repo=${encodeURIComponent(repo)}&tag=${tagName}&pause=true`,
        json: { Labels: { [L.hostUsr]: c.Config.Labels?.[L.hostUsr] ?? "0" } },
        timeoutMs: 30 * 60_000,
      });
      const tmp = `${dest}.tmp`;
      try {
        const res = await this.engine.stream({
          method: "GET",
          path: `/images/${encodeURIComponent(ref)}/get`,
        });
        await pipeline(res, createWriteStream(tmp, { mode: 0o600 }));
        renameSync(tmp, dest);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw err;
      } finally {
        await this.templates.removeImage(ref);
      }
      return statSync(dest).size;
    });
  }

  destroy(id: string): Promise<void> {
    if (!ID.test(id)) return Promise.resolve();
    return this.lock.run(id, () => this.teardown(id));
  }

  /** Removes the container, the image it was restored from (unless another uses it) and its host dirs. */
  private async teardown(id: string): Promise<void> {
    const c = await this.container(id);
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
      const restored = c.Config.Labels?.[L.restoreImage];
      if (restored) await this.templates.removeImage(restored);
    }
    this.addresses.delete(id);
    await this.allowlist?.unregister(id);
    rmSync(this.paths(id).dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const c of await this.containers()) {
      const id = c.Labels?.[L.sandbox];
      if (id && ID.test(id)) ids.add(id);
    }
    for (const name of safeReaddir(join(this.root, "sandboxes"))) if (ID.test(name)) ids.add(name);
    return [...ids].sort();
  }

  async close(): Promise<void> {
    this.allowlist?.close();
  }

  /** Removes this instance's networks and volumes (tests, uninstall; after every sandbox is gone). */
  async purgeHostState(): Promise<void> {
    for (const n of [this.network, this.allowlistNetwork])
      await this.engine.json({ method: "DELETE", path: `/networks/${n}` }).catch(() => {});
    await applyNft(removeBridgeRulesScript(this.firewallTable), this.log).catch(() => {});
    for (const id of this.volumes.list()) await this.volumes.remove(id);
    rmSync(join(this.root, "volumes"), { recursive: true, force: true });
  }

  /**
   * Volumes are the local driver's: an ext4 image of the volume's size, loop-mounted on the host
   * and bound into each container that uses it, so the kernel enforces the size.
   */
  createVolume(id: string, sizeMiB: number): Promise<void> {
    return this.volumes.create(id, sizeMiB);
  }

  async deleteVolume(id: string): Promise<void> {
    await this.volumes.remove(id);
    rmSync(this.legacyVolumeDir(id), { recursive: true, force: true });
  }

  async volumeUsage(id: string): Promise<number> {
    if (existsSync(this.volumes.image(id))) return this.volumes.usedBytes(id);
    if (!existsSync(this.legacyVolumeDir(id))) throw new NotFoundError("volume", id);
    return duBytes(this.legacyVolumeDir(id));
  }

  /**
   * Moves a container between `none`, the open bridge and the allowlist bridge, or rewrites its
   * allowlist rules (effective at once). On the allowlist bridge its rules are written before
   * this returns; until then that bridge drops its packets.
   */
  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    return this.lock.run(id, async () => {
      this.checkEgress(policy);
      const c = await this.existing(id);
      this.writePolicy(id, policy);
      const want = this.networkFor(policy);
      const have = Object.keys(c.NetworkSettings.Networks ?? {});
      for (const n of have)
        if (n !== want)
          await this.engine.json({
            method: "POST",
            path: `/networks/${n}/disconnect`,
            json: { Container: c.Id, Force: true },
          });
      if (!have.includes(want))
        await this.engine.json({
          method: "POST",
          path: `/networks/${want}/connect`,
          json: { Container: c.Id },
        });
      const after = await this.container(id);
      if (after) await this.learnAddress(id, after, policy);
    });
  }

  /** The Docker network a policy puts a container on. */
  private networkFor(policy: NetworkPolicy): string {
    if (policy.egress === "open") return this.network;
    if (policy.egress === "allowlist") return this.allowlistNetwork;
    return "none";
  }

  private checkEgress(policy: NetworkPolicy): void {
    if (policy.egress === "allowlist" && !this.allowlist)
      throw new NotSupportedError(
        "egress 'allowlist' on the docker driver needs nftables on the host (`nft`); this one enforces 'none' and 'open' only",
      );
  }

  /** The policy is kept beside the sandbox: the allowlist rules are written again from it after a restart. */
  private writePolicy(id: string, policy: NetworkPolicy): void {
    const file = join(this.paths(id).dir, "network.json");
    writeFileSync(`${file}.tmp`, JSON.stringify({ egress: policy.egress, allow: policy.allow }), {
      mode: 0o600,
    });
    renameSync(`${file}.tmp`, file);
  }

  private readPolicy(id: string): NetworkPolicy {
    try {
      const p = JSON.parse(readFileSync(join(this.paths(id).dir, "network.json"), "utf8")) as NetworkPolicy;
      if (p.egress === "allowlist" && Array.isArray(p.allow)) return { egress: p.egress, allow: p.allow };
    } catch {
      // no policy file: nothing is allowed
    }
    return { egress: "allowlist", allow: [] };
  }

  /** After the ruleset was written at start: the running containers on the allowlist bridge get their rules again. */
  private async registerAllowlisted(): Promise<void> {
    if (!this.allowlist) return;
    for (const entry of await this.containers(true, this.allowlistNetwork)) {
      const id = entry.Labels?.[L.sandbox];
      if (!id || !ID.test(id)) continue;
      const c = await this.container(id);
      if (c?.State.Running && c.NetworkSettings.Networks?.[this.allowlistNetwork])
        await this.learnAddress(id, c);
    }
  }

  private async ensureNetwork(name: string, bridge: string): Promise<void> {
    try {
      await this.engine.json({ method: "GET", path: `/networks/${name}` });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.engine.json({
        method: "POST",
        path: "/networks/create",
        json: {
          Name: name,
          Driver: "bridge",
          CheckDuplicate: true,
          Labels: { [L.instance]: this.tag },
          Options: {
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.name": bridge,
          },
        },
      });
    }
  }

  /** Where sandboxes are: their bridge address, the host's address on that bridge. */
  readonly addressing: SandboxAddressing = {
    address: (id) => this.addresses.get(id) ?? null,
    sourceAddress: (id) => this.addresses.get(id) ?? null,
    hostAddress: (id) => this.hostAddress(id),
    sandboxCidrs: () => this.sandboxCidrs(),
    processEnv: () => ({}),
  };

  /** The host's address on the bridge the sandbox is on (where it reaches the model gateway). */
  hostAddress(id: string): string | null {
    const ip = this.addresses.get(id);
    if (!ip) return null;
    const onBridge = [this.bridge, this.allowBridge].find((b) => b && inCidr(ip, b.subnet));
    return onBridge?.gateway ?? null;
  }

  sandboxCidrs(): string[] {
    return [this.bridge, this.allowBridge].flatMap((b) => (b ? [b.subnet] : []));
  }

  listTemplates(): Promise<TemplateInfo[]> {
    return this.templates.list();
  }

  getTemplate(name: string): Promise<TemplateInfo | null> {
    return this.templates.get(name);
  }

  importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo> {
    return this.templates.importArchive(name, file, format, signal);
  }

  templateFromSandbox(id: string, name: string): Promise<TemplateInfo> {
    return this.lock.run(id, async () => {
      const c = await this.existing(id);
      const base = c.Config.Labels?.[L.template] ?? "default";
      return this.templates.commit(c.Id, name, `built from ${base}`, c.Config.Labels?.[L.hostUsr] === "1");
    });
  }

  async deleteTemplate(name: string): Promise<void> {
    const users = (await this.containers(false)).filter((c) => c.Labels?.[L.template] === name);
    await this.templates.remove(
      name,
      users.map((c) => c.Labels?.[L.sandbox] ?? c.Id),
    );
  }

  /**
   * Filters `open` sandboxes as the local driver does (no host but the given ports, no private,
   * link-local or reserved ranges, no other sandbox) with nftables on the instance's bridge.
   * Without `nft` on the host `open` is Docker's plain bridge, and the driver says so.
   */
  private async startFirewall(): Promise<void> {
    this.filtered = false;
    try {
      const open = await this.subnetOf(this.network);
      this.bridge = open;
      this.allowBridge = await this.subnetOf(this.allowlistNetwork);
      const allowSubnet = this.allowBridge.subnet;
      this.allowlist ??= new AllowlistEgress({
        table: this.firewallTable,
        upstream: this.o.dnsUpstream || hostResolver(),
        forbidden: forbiddenRanges([open.subnet, allowSubnet]),
        log: this.log,
      });
      const ports = await this.allowlist.start();
      await applyNft(
        bridgeRulesScript({
          table: this.firewallTable,
          bridge: this.network,
          subnet: open.subnet,
          hostPorts: this.o.hostPorts ?? [],
          resolvers: hostResolvers(),
          allowlist: {
            bridge: this.allowlistBridge,
            subnet: allowSubnet,
            dnsPort: ports.dns,
            proxy: ports.proxy,
          },
        }),
        this.log,
      );
      this.allowlist.reset();
      // Allowed packets of allowlist sandboxes are routed by the host (Docker turns this on too).
      writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
      this.filtered = true;
    } catch (err) {
      this.allowlist?.close();
      this.allowlist = undefined;
      this.log.warn(
        { err: String(err) },
        "no nftables filtering of open sandboxes (they reach the host and private ranges), and no allowlist egress",
      );
    }
  }

  private async subnetOf(network: string): Promise<{ subnet: string; gateway: string | null }> {
    const n = await this.engine.json<{ IPAM: { Config: { Subnet?: string; Gateway?: string }[] | null } }>({
      method: "GET",
      path: `/networks/${network}`,
    });
    const v4 = n.IPAM.Config?.find((c) => c.Subnet?.includes("."));
    if (!v4?.Subnet) throw new SandboxError(`the bridge network ${network} has no IPv4 subnet`);
    return { subnet: v4.Subnet, gateway: v4.Gateway ?? null };
  }

  /** Whether `open` sandboxes are filtered (nftables rules on the bridge); known after `start`. */
  get filtersOpenEgress(): boolean {
    return this.filtered;
  }

  private get firewallTable(): string {
    return `berthd_${this.tag}`;
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

  /** The containers of this instance (or of every instance), in any state; only those on `network` if given. */
  private async containers(
    mine = true,
    network?: string,
  ): Promise<{ Id: string; Labels: Record<string, string> | null }[]> {
    const label = mine ? [`${L.instance}=${this.tag}`] : [L.sandbox];
    const filters = encodeURIComponent(JSON.stringify({ label, ...(network ? { network: [network] } : {}) }));
    return this.engine.json({ method: "GET", path: `/containers/json?all=true&filters=${filters}` });
  }

  private async container(id: string, size = false): Promise<ContainerJson | null> {
    try {
      return await this.engine.json<ContainerJson>({
        method: "GET",
        path: `/containers/${this.containerName(id)}/json${size ? "?size=true" : ""}`,
      });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async existing(id: string, size = false): Promise<ContainerJson> {
    const c = ID.test(id) ? await this.container(id, size) : null;
    if (!c) throw new NotFoundError("sandbox", id);
    return c;
  }

  private containerName(id: string): string {
    return `berth-${this.tag}-${id}`;
  }

  private paths(id: string) {
    const dir = join(this.root, "sandboxes", id);
    return { dir, sockDir: join(dir, "sock"), socket: join(dir, "sock", "sock"), state: join(dir, "state") };
  }

  /** The host path bound in: the volume's mount, or (made before volumes had a size) its plain directory. */
  private volumeDir(id: string): string {
    return existsSync(this.volumes.image(id)) ? this.volumes.mountPoint(id) : this.legacyVolumeDir(id);
  }

  /** A volume made before volumes had a size: a plain directory. */
  private legacyVolumeDir(id: string): string {
    return join(this.root, "volumes", id);
  }

  private initBinary(): string {
    return this.o.initBinary ?? initBinaryPath();
  }
}

interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; max_usage?: number };
  pids_stats?: { current?: number };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

/** OOM kills in the container's memory cgroup, read through its init's /proc entry (v1 or v2). */
function readOomKills(pid: number): number {
  try {
    const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
    const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    const file = v1
      ? `/sys/fs/cgroup/memory${v1.split(":")[2]}/memory.oom_control`
      : `/sys/fs/cgroup${lines.find((l) => l.startsWith("0::"))?.slice(3) ?? ""}/memory.events`;
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const st = await lstat(p).catch(() => null);
    if (!st) continue;
    total += st.blocks * 512;
    if (st.isDirectory()) total += await duBytes(p);
  }
  return total;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
