/**
 * Work done inside a pod through its berth-init (the same protocol every driver uses): reading
 * the container's cgroup counters, and streaming /workspace out to a file or back in with tar.
 * Everything a pod answers is untrusted: output is bounded and numbers are parsed strictly.
 */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createGunzip, createGzip } from "node:zlib";
import { SandboxError, type SandboxStats } from "@berth/core";
import type { ExitStatus, ProcessStream, SupervisorClient } from "@berth/supervisor";

const ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };
const MAX_TEXT = 64 * 1024;

/** Runs a command and returns its stdout (at most 64 KiB) and exit status. */
export async function runText(
  client: SupervisorClient,
  cmd: string[],
): Promise<{ out: string; status: ExitStatus }> {
  const p = await client.exec({ cmd, env: ENV, stdin: false });
  let out = "";
  p.on("stdout", (b: Buffer) => {
    if (out.length < MAX_TEXT) out += b.toString("utf8");
  });
  const status = await exited(p);
  return { out: out.slice(0, MAX_TEXT), status };
}

/*
 * One shell script reads both cgroup layouts (v2 with its cgroup namespace: the container's own
 * group is /sys/fs/cgroup; v1: one dir per controller), /workspace's size and the pod's traffic.
 */
const STATS_SCRIPT = `c=/sys/fs/cgroup
v(){ [ -r "$2" ] && echo "$1 $(head -c 64 "$2")"; }
k(){ [ -r "$2" ] && sed -n "s/^$3 /$1 /p" "$2"; }
k cpu_us $c/cpu.stat usage_usec; v mem $c/memory.current; v peak $c/memory.peak; k oom $c/memory.events oom_kill; v pids $c/pids.current
v cpu_ns $c/cpuacct/cpuacct.usage; v mem $c/memory/memory.usage_in_bytes; v peak $c/memory/memory.max_usage_in_bytes; k oom $c/memory/memory.oom_control oom_kill; v pids $c/pids/pids.current
echo disk_kib $(du -sk /workspace 2>/dev/null | cut -f1)
echo procs $(ls -d /proc/[0-9]* 2>/dev/null | wc -l)
sed -n 's/^ *\\([^:]*\\): *\\([0-9]*\\) *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *\\([0-9]*\\).*/net \\1 \\2 \\3/p' /proc/net/dev`;

/** The pod's resource use and OOM kills, as its own cgroup and /proc tell (0 where unreadable). */
export async function podStats(client: SupervisorClient): Promise<SandboxStats & { oomKills: number }> {
  const { out } = await runText(client, ["sh", "-c", STATS_SCRIPT]);
  const n: Record<string, number> = {};
  let rx = 0;
  let tx = 0;
  for (const line of out.split("\n")) {
    const [key, a, b, c] = line.trim().split(/\s+/);
    if (key === "net" && a !== "lo") {
      rx += safeInt(b);
      tx += safeInt(c);
    } else if (key && a !== undefined && n[key] === undefined) n[key] = safeInt(a);
  }
  const memoryBytes = n.mem ?? 0;
  return {
    cpuSeconds: n.cpu_us !== undefined ? n.cpu_us / 1e6 : (n.cpu_ns ?? 0) / 1e9,
    memoryBytes,
    memoryPeakBytes: Math.max(n.peak ?? 0, memoryBytes),
    diskBytes: (n.disk_kib ?? 0) * 1024,
    // The cgroup's count when there is one; else the processes this pod's /proc shows.
    pids: n.pids ?? n.procs ?? 0,
    netRxBytes: rx,
    netTxBytes: tx,
    oomKills: n.oom ?? 0,
  };
}

/** OOM kills in the container's memory cgroup (v2 or v1), read as files: no process started. */
export async function podOomKills(client: SupervisorClient, timeoutMs = 10_000): Promise<number> {
  for (const path of ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]) {
    try {
      const { stream } = await client.read(path);
      // The file's bytes come after the first answer: a pod that stops sending is given up on.
      const timer = setTimeout(
        () => stream.destroy(new SandboxError("reading the pod's cgroup timed out")),
        timeoutMs,
      );
      let text = "";
      try {
        for await (const chunk of stream) if (text.length < 4096) text += chunk;
      } finally {
        clearTimeout(timer);
      }
      const m = /^oom_kill (\d{1,15})$/m.exec(text);
      if (m) return Number(m[1]);
    } catch {
      // not this layout
    }
  }
  return 0;
}

/** Writes /workspace as a gzipped tar to `dest`; its size in bytes. */
export async function archiveWorkspace(client: SupervisorClient, dest: string): Promise<number> {
  const p = await client.exec({ cmd: ["tar", "-C", "/workspace", "-cf", "-", "."], env: ENV, stdin: false });
  const gzip = createGzip({ level: 1 });
  const file = createWriteStream(dest, { mode: 0o600 });
  gzip.pipe(file);
  let stderr = "";
  p.on("stdout", (b: Buffer) => {
    if (!gzip.write(b)) {
      p.pause();
      gzip.once("drain", () => p.resume());
    }
  });
  p.on("stderr", (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString("utf8");
  });
  const status = await exited(p);
  gzip.end();
  await once(file, "close");
  if (status.exitCode !== 0)
    throw new SandboxError(`tar in the sandbox failed: ${stderr.trim().slice(0, 300)}`);
  return file.bytesWritten;
}

/** Unpacks a file made by `archiveWorkspace` into /workspace. */
export async function restoreWorkspace(client: SupervisorClient, src: string): Promise<void> {
  const p = await client.exec({ cmd: ["tar", "-C", "/workspace", "-xf", "-"], env: ENV, stdin: true });
  let stderr = "";
  p.on("stderr", (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString("utf8");
  });
  const status = exited(p);
  try {
    for await (const chunk of createReadStream(src).pipe(createGunzip()))
      if (!p.writeStdin(chunk as Buffer)) await p.drained();
    p.endStdin();
  } catch (err) {
    p.close();
    throw new SandboxError(`the snapshot could not be read: ${(err as Error).message}`);
  }
  const s = await status;
  if (s.exitCode !== 0)
    throw new SandboxError(`restoring the snapshot failed: ${stderr.trim().slice(0, 300)}`);
}

function exited(p: ProcessStream): Promise<ExitStatus> {
  return new Promise((resolve, reject) => {
    p.on("exit", resolve);
    p.on("error", reject);
  });
}

function safeInt(s: string | undefined): number {
  return s !== undefined && /^\d{1,18}$/.test(s) ? Number(s) : 0;
}
