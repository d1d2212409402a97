import type { SandboxSpec } from "@berth/core";
import { initEnv, SANDBOX_UID } from "@berth/linux-host";
import { LABEL } from "./instance.js";

/** Inside the container: berth-init, its state dir and the dir of its listening socket. */
export const INIT_PATH = "/.berth/init";
const STATE_DIR = "/run/berth";
const SOCKET_DIR = "/run/berth-sock";
const SHM_BYTES = 64 * 1024 * 1024;

/** What a sandbox's container is made of besides its spec. */
export interface ContainerInput {
  spec: SandboxSpec;
  image: string;
  /** The image a snapshot was loaded as ("" when none): removed with the container. */
  restoreImage: string;
  /** Whether the image wants the host's /usr bound read-only. */
  hostUsr: boolean;
  instanceTag: string;
  initBinary: string;
  paths: { sockDir: string; state: string };
  /** Host path each of the spec's volumes is bound from. */
  volumePath: (id: string) => string;
  networkMode: string;
  /** Whether the storage driver takes a size for the writable layer. */
  diskQuota: boolean;
}

/**
 * The body of `POST /containers/create` for a sandbox: berth-init (bound from the host) is the
 * entrypoint, running as uid 1000 with no capabilities, no_new_privs and Docker's default
 * seccomp profile, with the sandbox's limits and labels that find it again after a restart.
 */
export function containerSpec(c: ContainerInput): Record<string, unknown> {
  const { spec } = c;
  const memory = spec.resources.memoryMiB * 1024 * 1024;
  const env = { ...spec.env, ...initEnv(STATE_DIR), BERTH_LISTEN_PATH: `${SOCKET_DIR}/sock` };
  const binds = [
    `${c.initBinary}:${INIT_PATH}:ro`,
    `${c.paths.sockDir}:${SOCKET_DIR}:rw`,
    `${c.paths.state}:${STATE_DIR}:rw`,
    ...(c.hostUsr ? ["/usr:/usr:ro"] : []),
    ...(spec.volumes ?? []).map((v) => `${c.volumePath(v.id)}:${v.mountPath}:rw`),
  ];
  return {
    Image: c.image,
    Entrypoint: [INIT_PATH],
    User: `${SANDBOX_UID}:${SANDBOX_UID}`,
    WorkingDir: "/workspace",
    Hostname: spec.id,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABEL.instance]: c.instanceTag,
      [LABEL.sandbox]: spec.id,
      [LABEL.template]: spec.template,
      [LABEL.hostUsr]: c.hostUsr ? "1" : "0",
      [LABEL.restoreImage]: c.restoreImage,
    },
    HostConfig: {
      Binds: binds,
      NetworkMode: c.networkMode,
      NanoCpus: Math.max(10_000_000, Math.round(spec.resources.cpus * 1e9)),
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: spec.resources.pids,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ShmSize: Math.min(SHM_BYTES, memory),
      IpcMode: "private",
      ...(c.diskQuota ? { StorageOpt: { size: `${spec.resources.diskMiB}M` } } : {}),
      RestartPolicy: { Name: "no" },
      LogConfig: { Type: "none", Config: {} },
    },
  };
}
