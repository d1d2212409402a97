/**
 * A Docker Engine for tests: the host's (at /var/run/docker.sock) when it answers, else Debian's
 * `dockerd` started here with its own data root, socket and address pool, no default bridge and
 * no iptables changes (so the local driver's nftables rules and other test files are untouched).
 * Its data root is a btrfs image (storage driver btrfs) when mkfs.btrfs is installed, so the
 * driver's disk limits work. `stop()` ends a dockerd this started and removes its files.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import http from "node:http";
import { holdRange } from "./ranges.js";

export interface TestDocker {
  socketPath: string;
  stop(): Promise<void>;
}

/** The engine, or the reason there is none (printed by the test that skips). */
export async function startTestDocker(): Promise<TestDocker | { reason: string }> {
  if (await answers("/var/run/docker.sock"))
    return { socketPath: "/var/run/docker.sock", stop: async () => {} };
  if (!onPath("dockerd")) return { reason: "dockerd is not installed (apt-get install docker.io)" };
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const dir = `/tmp/berth-dockerd-${tag}`;
  const dataRoot = `/var/lib/berth-test-docker-${tag}`;
  const socketPath = `${dir}/docker.sock`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const btrfs = mountBtrfsDataRoot(`${dir}/data.img`, dataRoot);
  // Its networks take /24s of a /16 that nothing else on this host uses.
  const pool = holdRange("dockerPool");
  const child: ChildProcess = spawn(
    "dockerd",
    [
      "--data-root",
      dataRoot,
      "--exec-root",
      `${dir}/exec`,
      "--pidfile",
      `${dir}/dockerd.pid`,
      "-H",
      `unix://${socketPath}`,
      "--bridge=none",
      "--iptables=false",
      ...(btrfs ? ["--storage-driver", "btrfs"] : []),
      "--ip-forward=false",
      "--default-address-pool",
      `base=${pool.cidr},size=24`,
      "--containerd-namespace",
      `berth-${tag}`,
      "--containerd-plugins-namespace",
      `berth-${tag}-plugins`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (b: Buffer) => {
    log = (log + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const cleanup = () => {
    // Mounts it left (the btrfs data root: a loop device with autoclear) go first.
    execFileSync("sh", [
      "-c",
      `grep -F ' ${dataRoot}' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r umount -l; true`,
    ]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataRoot, { recursive: true, force: true });
    pool.release();
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if (await answers(socketPath)) {
      return {
        socketPath,
        async stop() {
          child.kill("SIGTERM");
          const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
          await exited;
          clearTimeout(t);
          cleanup();
        },
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  await exited;
  cleanup();
  return {
    reason: `dockerd did not start${btrfs ? " (btrfs data root)" : ""}: ${log.trim().split("\n").slice(-3).join(" | ")}`,
  };
}

/**
 * Mounts a sparse btrfs image at the data root when mkfs.btrfs is installed, for Docker's btrfs
 * storage driver: it limits each container's writable layer (`--storage-opt size`, a qgroup),
 * which overlay2 only does over xfs with project quotas (this kernel has no xfs quota).
 */
function mountBtrfsDataRoot(image: string, dataRoot: string): boolean {
  mkdirSync(dataRoot, { recursive: true, mode: 0o711 });
  if (!onPath("mkfs.btrfs")) return false;
  try {
    execFileSync("truncate", ["-s", "20G", image]);
    execFileSync("mkfs.btrfs", ["-q", image]);
    execFileSync("mount", ["-o", "loop", image, dataRoot]);
    return true;
  } catch {
    rmSync(image, { force: true });
    return false;
  }
}

function answers(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

function onPath(bin: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
