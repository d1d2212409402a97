import { readFileSync } from "node:fs";
import { join } from "node:path";
import { NotFoundError, SANDBOX_ID, type SandboxStats } from "@berth/core";
import { type Engine, isNotFound } from "./engine.js";

export { SANDBOX_ID } from "@berth/core";

/** Labels every container of this driver carries. */
export const LABEL = {
  instance: "berth.instance",
  sandbox: "berth.sandbox",
  template: "berth.template",
  hostUsr: "berth.host-usr",
  restoreImage: "berth.restore-image",
} as const;

/** What the driver reads of `GET /containers/{id}/json`. */
export interface ContainerJson {
  Id: string;
  State: { Status: string; Running: boolean; Paused: boolean; Pid: number };
  Config: { Labels: Record<string, string> | null };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> | null };
  SizeRw?: number;
}

/**
 * One Berth instance's share of a Docker Engine (several servers may share one engine): the
 * names and labels of its containers and networks, and where its sandboxes' host dirs are.
 */
export class DockerInstance {
  constructor(
    readonly engine: Engine,
    /** The driver's dir on the host (`<dataDir>/runtime-docker`). */
    readonly root: string,
    /** Short hash of `root`: in every name and label of this instance. */
    readonly tag: string,
  ) {}

  /** The bridge network `open` sandboxes join (inter-container traffic off). */
  get network(): string {
    return `berth-${this.tag}`;
  }

  /** The bridge network `allowlist` sandboxes join: nothing passes but what each one's rules let through. */
  get allowlistNetwork(): string {
    return `berth-${this.tag}-allow`;
  }

  containerName(id: string): string {
    return `berth-${this.tag}-${id}`;
  }

  /** The sandbox's host dirs: its socket dir (bound in) and berth-init's state dir. */
  paths(id: string) {
    const dir = join(this.root, "sandboxes", id);
    return { dir, sockDir: join(dir, "sock"), socket: join(dir, "sock", "sock"), state: join(dir, "state") };
  }

  /** The containers of this instance (or of every instance), in any state; only those on `network` if given. */
  async containers(
    mine = true,
    network?: string,
  ): Promise<{ Id: string; Labels: Record<string, string> | null }[]> {
    const label = mine ? [`${LABEL.instance}=${this.tag}`] : [LABEL.sandbox];
    const filters = encodeURIComponent(JSON.stringify({ label, ...(network ? { network: [network] } : {}) }));
    return this.engine.json({ method: "GET", path: `/containers/json?all=true&filters=${filters}` });
  }

  /** The sandbox's container, or null when it has none. */
  async container(id: string, size = false): Promise<ContainerJson | null> {
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

  /** Resource use of a container (`c` read with its size), from the engine's one-shot stats. */
  async stats(c: ContainerJson): Promise<SandboxStats> {
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

  /** The sandbox's container; NotFoundError when it has none. */
  async existing(id: string, size = false): Promise<ContainerJson> {
    const c = SANDBOX_ID.test(id) ? await this.container(id, size) : null;
    if (!c) throw new NotFoundError("sandbox", id);
    return c;
  }
}

interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; max_usage?: number };
  pids_stats?: { current?: number };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

/** OOM kills in the container's memory cgroup, read through its init's /proc entry (v1 or v2). */
export function readOomKills(pid: number): number {
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
