// Berth on the Docker driver (BERTH_RUNTIME=docker) through its HTTP API: create-to-running,
// exec of `true` and delete, next to the local driver's figures. Uses the host's Docker when it
// answers, else starts Debian's dockerd with a data root of its own, and stops it after.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { DockerRuntime } from "@berth/runtime-docker";
import { caller, startBerth } from "./berth.mjs";
import { summary, timeMany } from "./stats.mjs";

function answers(socketPath) {
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

/** The engine's socket and how to stop it (null when dockerd is missing or does not start). */
async function engine() {
  if (await answers("/var/run/docker.sock"))
    return { socketPath: "/var/run/docker.sock", stop: async () => {} };
  try {
    execFileSync("sh", ["-c", "command -v dockerd"], { stdio: "ignore" });
  } catch {
    return null;
  }
  const dir = mkdtempSync("/tmp/bench-berth-docker-");
  const socketPath = `${dir}/docker.sock`;
  const daemon = spawn(
    "dockerd",
    [
      ...["--data-root", `${dir}/data`, "--exec-root", `${dir}/exec`, "--pidfile", `${dir}/docker.pid`],
      ...["-H", `unix://${socketPath}`, "--bridge=none", "--iptables=false", "--ip-forward=false"],
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise((r) => daemon.once("exit", r));
  const stop = async () => {
    if (daemon.exitCode === null) daemon.kill("SIGTERM");
    await exited;
    execFileSync("sh", [
      "-c",
      `grep -F ' ${dir}/' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r umount -l; true`,
    ]);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300 && daemon.exitCode === null; i++) {
    if (await answers(socketPath)) return { socketPath, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  return null;
}

/** Create, exec and delete through the API of a server on the Docker driver (egress none). */
export async function benchBerthDocker(n, execN) {
  const docker = await engine();
  if (!docker) {
    process.stderr.write(
      "[bench] skipping berth-docker: no Docker Engine (dockerd missing or did not start)\n",
    );
    return null;
  }
  const ids = [];
  let server;
  try {
    server = await startBerth({
      BERTH_RUNTIME: "docker",
      BERTH_DOCKER_SOCKET: docker.socketPath,
      BERTH_LOG_LEVEL: "error",
    });
    const call = caller(server);
    const create = await timeMany(n, async () => {
      const s = await call("POST", "/v1/sandboxes", {});
      if (s.state !== "running") throw new Error(`created sandbox is ${s.state}`);
      ids.push(s.id);
    });
    const exec = await timeMany(
      execN,
      async () => {
        const r = await call("POST", `/v1/sandboxes/${ids[0]}/exec`, { cmd: ["true"] });
        if (r.exitCode !== 0) throw new Error(`exec true exited ${r.exitCode}`);
      },
      10,
    );
    const toDelete = ids.splice(0);
    const del = await timeMany(
      toDelete.length,
      async (i) => {
        if (i >= 0) await call("DELETE", `/v1/sandboxes/${toDelete[i]}`);
      },
      0,
    );
    return {
      name: "berth-docker",
      create: summary(create),
      exec: summary(exec),
      delete: summary(del),
      note: "the same API on BERTH_RUNTIME=docker (egress none)",
    };
  } finally {
    if (server) {
      const call = caller(server);
      for (const id of ids) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
      await server.stop();
      // A stopped server keeps its bridge network and its nftables table for the next start: this one has none.
      const cleaner = new DockerRuntime({ dataDir: server.dataDir, socketPath: docker.socketPath });
      await cleaner.purgeHostState().catch(() => {});
    }
    await docker.stop();
  }
}
