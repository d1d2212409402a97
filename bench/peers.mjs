// The peers measured beside Berth on the same host: bare runc, Docker and bubblewrap.
// Each peer returns null when it cannot run here, with the reason printed.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { summary, timeMany } from "./stats.mjs";

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** Bare runc: a bundle with the host /usr bound read-only and a sleeping process. */
export async function benchRunc(n, execN) {
  if (!has("runc")) return skip("runc", "runc not installed");
  const dir = mkdtempSync(join(tmpdir(), "bench-runc-"));
  const root = join(dir, "root");
  try {
    const bundle = join(dir, "bundle");
    mkdirSync(join(bundle, "rootfs"), { recursive: true });
    for (const d of ["usr", "proc", "dev", "tmp"]) mkdirSync(join(bundle, "rootfs", d));
    for (const l of ["bin", "lib", "lib64", "sbin"]) sh("ln", ["-s", `usr/${l}`, join(bundle, "rootfs", l)]);
    sh("runc", ["spec"], { cwd: bundle });
    const spec = JSON.parse(sh("cat", [join(bundle, "config.json")]).toString());
    spec.process.terminal = false;
    spec.process.args = ["sleep", "infinity"];
    spec.root.readonly = true;
    spec.mounts.push({ destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro"] });
    writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
    const ids = [];
    const create = await timeMany(n, async (i) => {
      const id = `bench-${process.pid}-${i < 0 ? `w${-i}` : i}`;
      ids.push(id);
      sh("runc", ["--root", root, "run", "-d", "--bundle", bundle, id], { stdio: "ignore" });
    });
    const execTimes = await timeMany(execN, async () => {
      sh("runc", ["--root", root, "exec", ids[0], "true"]);
    });
    for (const id of ids) spawnSync("runc", ["--root", root, "delete", "--force", id]);
    return {
      name: "runc",
      create: summary(create),
      exec: summary(execTimes),
      note: "runc spec defaults: no seccomp, no limits, no disk",
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bubblewrap has no long-lived sandbox: one `bwrap ... true` is create+exec+teardown. */
export async function benchBwrap(n) {
  if (!has("bwrap")) return skip("bubblewrap", "bwrap not installed");
  const args = [
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "true",
  ];
  const times = await timeMany(n, async () => {
    sh("bwrap", args);
  });
  return {
    name: "bubblewrap",
    create: summary(times),
    exec: summary(times),
    note: "one-shot: create = exec",
  };
}

/** Docker Engine: starts dockerd when installed and not running; imports a tiny image (no registry here). */
export async function benchDocker(n, execN) {
  if (!has("dockerd") || !has("docker")) return skip("docker", "docker.io not installed");
  let daemon = null;
  const dir = mkdtempSync(join(tmpdir(), "bench-docker-"));
  try {
    if (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0) {
      daemon = spawn(
        "dockerd",
        [
          "--data-root",
          join(dir, "data"),
          "--exec-root",
          join(dir, "exec"),
          "--pidfile",
          join(dir, "docker.pid"),
          "--bridge",
          "none",
          "--iptables=false",
          "--ip6tables=false",
        ],
        { stdio: "ignore" },
      );
      for (let i = 0; i < 100 && spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0; i++)
        await new Promise((r) => setTimeout(r, 200));
      if (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0)
        return skip("docker", "dockerd did not start");
    }
    // A root filesystem with sleep/true and their libraries, imported as an image.
    const rootfs = join(dir, "rootfs");
    for (const bin of ["/usr/bin/sleep", "/usr/bin/true"]) {
      const libs =
        sh("ldd", [bin])
          .toString()
          .match(/\/[^\s]+/g) ?? [];
      for (const f of [bin, ...libs]) {
        mkdirSync(join(rootfs, f, ".."), { recursive: true });
        sh("cp", ["-L", f, join(rootfs, f)]);
      }
    }
    sh("sh", ["-c", `tar -C ${rootfs} -c . | docker import - berth-bench:latest`]);
    const ids = [];
    const create = await timeMany(n, async () => {
      ids.push(
        sh("docker", ["run", "-d", "--network", "none", "berth-bench:latest", "/usr/bin/sleep", "infinity"])
          .toString()
          .trim(),
      );
    });
    const execTimes = await timeMany(execN, async () => {
      sh("docker", ["exec", ids[0], "/usr/bin/true"]);
    });
    spawnSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
    return { name: "docker", create: summary(create), exec: summary(execTimes) };
  } finally {
    if (daemon) {
      daemon.kill("SIGTERM");
      await new Promise((r) => daemon.once("exit", r));
    }
    spawnSync("sh", ["-c", `umount -R ${dir}/* 2>/dev/null; true`]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function skip(name, why) {
  process.stderr.write(`[bench] skipping ${name}: ${why}\n`);
  return null;
}
