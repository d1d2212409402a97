import type { Duplex } from "node:stream";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import type { EgressMode, NetworkPolicy, Resources } from "./types.js";

/** What a runtime needs to bring a sandbox up. */
export interface SandboxSpec {
  id: string;
  template: string;
  resources: Resources;
  network: NetworkPolicy;
  /** Environment every process in the sandbox starts with (the API merges per-exec env on top). */
  env: Record<string, string>;
  /** A captured writable layer (from `snapshot`) the new sandbox starts with. */
  fromSnapshot?: string;
  /**
   * A fork: the id of a sandbox (running, paused or hibernated, of the same template and disk
   * size) whose files the new one starts with, as they are at one moment. Only drivers whose
   * `forksSandboxes` is true take it.
   */
  fromSandbox?: string;
  /** Volumes (by id) and where they appear in the sandbox. */
  volumes?: { id: string; mountPath: string }[];
  /**
   * Root inside: the sandbox gets a user namespace of its own whose root is an unprivileged host
   * id. A driver that cannot do it answers `root_unavailable` (or `not_supported`).
   */
  root?: boolean;
}

/** A named root filesystem sandboxes are made from (`default`, imported or built ones). */
export interface TemplateInfo {
  name: string;
  /** Bytes its files take on disk (one copy, shared by every sandbox made from it). */
  sizeBytes: number;
  createdAt: string;
  /** Where it came from, for people: `rootfs tar`, `docker save archive alpine:3.20`, `built from default`. */
  source: string;
}

/** What an imported template archive is: a root filesystem tar, a `docker save` archive, an OCI image layout. */
export type TemplateFormat = "rootfs" | "docker" | "oci";

/** Driver-private facts stored with the sandbox so the driver can find it again after a restart. */
export type RuntimeInfo = Record<string, unknown>;

/** What the runtime sees of a sandbox right now. */
export interface RuntimeStatus {
  /** `running`: processes alive; `stopped`: the sandbox exists but its init died; `missing`: nothing is left. */
  state: "running" | "paused" | "stopped" | "missing";
  /** How many times the kernel's OOM killer fired inside the sandbox so far. */
  oomKills: number;
}

/** Resource use read from the kernel (cgroups, the sandbox's disk). */
export interface SandboxStats {
  cpuSeconds: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  diskBytes: number;
  pids: number;
  netRxBytes: number;
  netTxBytes: number;
}

/** Capability: bringing sandboxes up and down and reaching their supervisor. Every driver has it. */
export interface SandboxLifecycle {
  /** Whether `create` takes `fromSandbox` (a copy of another sandbox's disk); others fork by snapshot. */
  readonly forksSandboxes: boolean;
  /** Creates and starts a sandbox; resolves when the supervisor accepts connections. */
  create(spec: SandboxSpec, signal?: AbortSignal): Promise<RuntimeInfo>;
  /** Opens a fresh byte stream to the sandbox's supervisor. */
  connect(id: string): Promise<Duplex>;
  /** Current status; never throws for an unknown id (answers `missing`). */
  inspect(id: string): Promise<RuntimeStatus>;
  /** Resource use of a running sandbox. */
  stats(id: string): Promise<SandboxStats>;
  /** Kills every process and removes every trace (mounts, cgroups, files). Idempotent. */
  destroy(id: string): Promise<void>;
  /** Ids of every sandbox this runtime holds resources for (used to find leaks and orphans). */
  list(): Promise<string[]>;
  /** Why this runtime cannot make root sandboxes (`root: true`) on this host, or null when it can. */
  rootUnavailable(): Promise<string | null>;
}

/**
 * Capability: stopping a sandbox's processes and starting them again. A driver that cannot do
 * one of these answers NotSupportedError (code `not_supported`) for it.
 */
export interface SandboxSuspension {
  /** Freezes every process (memory stays, CPU stops). */
  pause(id: string): Promise<void>;
  /** Thaws a paused sandbox. */
  resume(id: string): Promise<void>;
  /** Ends every process and frees memory; files, network and identity stay for `wake`. */
  hibernate(id: string): Promise<void>;
  /** Starts a hibernated sandbox again; resolves when its supervisor accepts connections. */
  wake(id: string): Promise<RuntimeInfo>;
  /** Captures the writable layer into the file `dest` (consistent: frozen while copied); its size. */
  snapshot(id: string, dest: string): Promise<number>;
}

/** Capability: the root filesystems sandboxes are made from. */
export interface TemplateCatalog {
  /** Every template, `default` included. */
  listTemplates(): Promise<TemplateInfo[]>;
  /** One template, or null when there is none of that name. */
  getTemplate(name: string): Promise<TemplateInfo | null>;
  /** Makes template `name` from an archive file (layers applied in order, whiteouts honoured). */
  importTemplate(
    name: string,
    file: string,
    format: TemplateFormat,
    signal?: AbortSignal,
  ): Promise<TemplateInfo>;
  /** Makes template `name` of a sandbox's files: its own template with its writable layer on top. */
  templateFromSandbox(id: string, name: string): Promise<TemplateInfo>;
  /** Deletes a template; ConflictError while a sandbox (hibernated ones too) is made from it. */
  deleteTemplate(name: string): Promise<void>;
}

/** Capability: named persistent volumes sandboxes mount. */
export interface SandboxVolumes {
  /** Makes a volume of `sizeMiB` (its limit enforced by the kernel). */
  createVolume(id: string, sizeMiB: number): Promise<void>;
  /** Removes a volume and its data (the caller checks no sandbox uses it). */
  deleteVolume(id: string): Promise<void>;
  /** Bytes in use on a volume. */
  volumeUsage(id: string): Promise<number>;
}

/** Capability: enforcing a sandbox's egress policy. */
export interface EgressControl {
  /** The egress modes this driver can enforce on this host (known after `start`). */
  readonly egressModes: readonly EgressMode[];
  /** Whether `open` egress can also deny listed CIDRs (`network.deny`); absent: it cannot. */
  readonly egressDeny?: boolean;
  /** Changes the egress policy of a running sandbox (effective at once). */
  setNetworkPolicy(id: string, policy: NetworkPolicy): Promise<void>;
}

/**
 * Capability: where sandboxes are on the network, as the model gateway and the preview proxy
 * see them. Every answer may be null or empty (a sandbox without a network has no address).
 */
export interface SandboxAddressing {
  /**
   * The sandbox's address on its network, reachable from the host; the supervisor's `dial`
   * reaches any port either way, this is only the faster road.
   */
  address(id: string): string | null;
  /**
   * The address the sandbox's traffic comes from (Kubernetes: the Pod's IP, which is not an
   * `address`); the model gateway takes a session's token only from it.
   */
  sourceAddress(id: string): string | null;
  /** The host's address as the sandbox reaches it (where the model gateway listens). */
  hostAddress(id: string): string | null;
  /** The address ranges sandboxes' traffic comes from (the model gateway takes only these and loopback). */
  sandboxCidrs(): string[];
  /**
   * Variables every process started in the sandbox gets from the driver, beneath the sandbox's
   * own env (the Kubernetes driver's egress proxy settings); empty on most drivers.
   */
  processEnv(id: string): Record<string, string>;
}

/**
 * A sandbox runtime driver (runc, Docker, Kubernetes): the capabilities above plus its own
 * start and close. It owns lifecycle and resources; exec, files and processes go through the
 * in-sandbox supervisor, which every driver reaches with `connect()`.
 */
export interface Runtime
  extends SandboxLifecycle,
    SandboxSuspension,
    TemplateCatalog,
    SandboxVolumes,
    EgressControl {
  /** Short driver name shown by /healthz, e.g. `runc`. */
  readonly name: string;
  /** Where sandboxes are on the network. */
  readonly addressing: SandboxAddressing;
  /** Prepares the host (templates, cgroup parent, pools). Safe to call on every start. */
  start(): Promise<void>;
  /** Releases pools and timers; leaves sandboxes running. */
  close(): Promise<void>;
}

/** What the server hands a driver besides the config. */
export interface RuntimeDeps {
  /** The server's data dir, absolute. */
  dataDir: string;
  /** The model gateway's port on the host (sandboxes may reach it). */
  gatewayPort: number;
  /** This server's replica id (drivers that share a cluster label what they own with it). */
  replica: string;
  log: Logger;
}

/** A runtime driver as the server's registry holds it: its name and how to make it from the config. */
export interface RuntimeDriver {
  readonly name: string;
  /** Makes the runtime (no I/O yet: the server calls `start()`); ConfigError for a bad setting. */
  create(config: Config, deps: RuntimeDeps): Runtime;
}
