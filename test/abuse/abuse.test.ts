// The abuse suite: a sandbox doing its worst to the resources it shares with the host and with
// other sandboxes. Each case checks that the limit holds inside, that the host and the server
// are fine, and that the sandbox is usable again afterwards. Timings are printed, never asserted.
import { execFileSync } from "node:child_process";
import { statfsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestServer, type TestServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

let server: TestServer;
const MiB = 1024 * 1024;
const call = (method: string, path: string, body?: unknown) =>
  api(server, server.adminKey, method, path, body);
const sh = async (id: string, script: string, timeoutSeconds?: number, user?: "root") =>
  (
    await call("POST", `/v1/sandboxes/${id}/exec`, {
      cmd: ["sh", "-c", script],
      ...(timeoutSeconds ? { timeoutMs: timeoutSeconds * 1000 } : {}),
      ...(user ? { user } : {}),
    })
  ).body as {
    exitCode: number;
    stdout: string;
    stderr: string;
    truncated?: boolean;
  };
const create = async (body: unknown = {}) => {
  const r = await call("POST", "/v1/sandboxes", body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
const hostFreeBytes = () => {
  const s = statfsSync(server.dataDir);
  return s.bavail * s.bsize;
};
/** An SSE stream's text up to the first match of `until`, or all of it after `ms`. */
const sseUntil = async (path: string, until: RegExp, ms: number) => {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let text = "";
  try {
    const res = await fetch(`${server.url}${path}`, {
      headers: { authorization: `Bearer ${server.adminKey}`, accept: "text/event-stream" },
      signal: ac.signal,
    });
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (until.test(text)) break;
    }
  } catch {
    // Aborted at the deadline: return what came.
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return text;
};
/** Still usable: answers an exec. */
const usable = async (id: string) => expect((await sh(id, "echo ok")).stdout).toBe("ok\n");
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.ceil(q * xs.length) - 1] as number;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

// The kernel limits hold the same for root in a root sandbox (root of its own user namespace).
describe.each(["user", "root"] as const)("abuse suite: kernel limits (%s)", (mode) => {
  const make = (body: Record<string, unknown> = {}) =>
    create({ ...body, ...(mode === "root" ? { root: true } : {}) });
  const run = (id: string, script: string, timeoutSeconds?: number) =>
    sh(id, script, timeoutSeconds, mode === "root" ? "root" : undefined);
  it("a classic fork bomb stops at the pids limit; the host's process count stays bounded", async () => {
    const id = await make({ resources: { pids: 64 } });
    const hostBefore = Number(
      execFileSync("sh", ["-c", "ls /proc | grep -c '^[0-9]'"], { encoding: "utf8" }),
    );
    const r = await run(id, "bomb() { bomb | bomb & }; bomb; sleep 2; ps -e | wc -l", 20);
    const hostDuring = Number(
      execFileSync("sh", ["-c", "ls /proc | grep -c '^[0-9]'"], { encoding: "utf8" }),
    );
    expect(Number(r.stdout.trim().split("\n").at(-1))).toBeLessThanOrEqual(66);
    expect(hostDuring - hostBefore).toBeLessThan(120);
    await call("DELETE", `/v1/sandboxes/${id}`);
  });

  it("a memory bomb is OOM-killed inside its limit and recorded; the sandbox lives on", async () => {
    const id = await make({ resources: { memoryMiB: 128 } });
    const r = await run(id, "python3 -c 'a=[]\nwhile True: a.append(bytearray(16*1024*1024))'");
    expect(r.exitCode).not.toBe(0);
    await usable(id);
    // The reaper records the kill as an `oom` event (it polls every 200 ms in tests).
    expect(await sseUntil(`/v1/sandboxes/${id}/events`, /event: oom\ndata: \{"count":[1-9]/, 5000)).toMatch(
      /event: oom/,
    );
    const m = await call("GET", `/v1/sandboxes/${id}/metrics`);
    expect(m.body.memoryPeakBytes).toBeLessThanOrEqual(128 * MiB + MiB);
    await call("DELETE", `/v1/sandboxes/${id}`);
  });

  it("filling the writable layer, /tmp and a volume ends in ENOSPC at their sizes; the host's disk barely moves", async () => {
    const vol = await call("POST", "/v1/volumes", { name: `abuse-fill-${mode}`, sizeMiB: 32 });
    expect(vol.status, JSON.stringify(vol.body)).toBe(201);
    const id = await make({
      resources: { diskMiB: 64 },
      volumes: [{ name: `abuse-fill-${mode}`, mountPath: "/data" }],
    });
    const free = hostFreeBytes();
    for (const [dir, max] of [
      ["/workspace", 64],
      ["/tmp", 64],
      ["/data", 32],
    ] as const) {
      const r = await run(
        id,
        `head -c 200000000 /dev/zero > ${dir}/fill; ls -s --block-size=1M ${dir}/fill | cut -d' ' -f1`,
      );
      expect(r.stderr, dir).toMatch(/No space left/);
      expect(Number(r.stdout.trim()), dir).toBeLessThanOrEqual(max);
      await run(id, `rm -f ${dir}/fill`);
    }
    expect(free - hostFreeBytes()).toBeLessThan(200 * MiB);
    await usable(id);
    await call("DELETE", `/v1/sandboxes/${id}`);
    await call("DELETE", `/v1/volumes/abuse-fill-${mode}`);
  });
});

describe("abuse suite", () => {
  it("running out of inodes fails inside only, and the sandbox recovers after cleaning up", async () => {
    const id = await create({ resources: { diskMiB: 32 } });
    const r = await sh(
      id,
      `mkdir /workspace/i && cd /workspace/i && python3 -c '${[
        "import os",
        "i = 0",
        "while True:",
        '    try: open("f" + str(i), "w").close()',
        "    except OSError: break",
        "    i += 1",
        "print(i)",
      ].join("\n")}' && df -i /workspace | tail -1`,
      120,
    );
    const made = Number(r.stdout.split("\n")[0]);
    expect(made, JSON.stringify(r)).toBeGreaterThan(1000);
    expect(r.stdout).toMatch(/100%/);
    expect((await sh(id, "touch /workspace/one-more")).exitCode).not.toBe(0);
    await sh(id, "rm -rf /workspace/i", 120);
    expect((await sh(id, "touch /workspace/one-more && echo ok")).stdout).toBe("ok\n");
    await call("DELETE", `/v1/sandboxes/${id}`);
  });

  // The goal is a neighbour p99 within 2x of idle; measured here 1.97-2.43x (see docs/security.md).
  it("a CPU hog does not starve its neighbour: the neighbour gets its share of CPU (exec latency printed, idle vs loaded)", async () => {
    const hog = await create({ resources: { cpus: 1 } });
    const neighbour = await create({ resources: { cpus: 1 } });
    const sample = async () => {
      const xs: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await sh(neighbour, "true");
        xs.push(performance.now() - t0);
      }
      return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) };
    };
    const idle = await sample();
    const hogStart = (await call("GET", `/v1/sandboxes/${hog}/metrics`)).body.cpuSeconds as number;
    await call("POST", `/v1/sandboxes/${hog}/processes`, { cmd: ["sh", "-c", "while :; do :; done"] });
    await call("POST", `/v1/sandboxes/${hog}/processes`, { cmd: ["sh", "-c", "while :; do :; done"] });
    await waitFor(
      "the hog to burn CPU",
      async () => (await call("GET", `/v1/sandboxes/${hog}/metrics`)).body.cpuSeconds as number,
      (s) => s > hogStart + 0.2,
    );
    const loaded = await sample();
    const hogCpu = await call("GET", `/v1/sandboxes/${hog}/metrics`);
    console.log(
      `neighbour exec p50/p99: idle ${idle.p50.toFixed(2)}/${idle.p99.toFixed(2)} ms, beside a CPU hog ` +
        `${loaded.p50.toFixed(2)}/${loaded.p99.toFixed(2)} ms (p99 ratio ${(loaded.p99 / idle.p99).toFixed(2)}x; goal <= 2x)`,
    );
    // The hog gets at most its one CPU however many loops it runs.
    const t0 = hogCpu.body.cpuSeconds as number;
    await new Promise((r) => setTimeout(r, 1000)); // the measurement window: CPU used in 1 s
    const used = ((await call("GET", `/v1/sandboxes/${hog}/metrics`)).body.cpuSeconds as number) - t0;
    expect(used).toBeLessThan(1.3);
    // Not starved: the neighbour, wanting CPU too (one loop against the hog's four), gets at least
    // half the hog's CPU time over the same stretch (the kernel's counters, not the wall clock,
    // so other load on the host slows both alike). Without a cgroup per sandbox, scheduled per
    // process, the hog's four loops would take four times the neighbour's one.
    for (let i = 0; i < 2; i++)
      await call("POST", `/v1/sandboxes/${hog}/processes`, { cmd: ["sh", "-c", "while :; do :; done"] });
    const cpuOf = async (id: string) =>
      (await call("GET", `/v1/sandboxes/${id}/metrics`)).body.cpuSeconds as number;
    const [n0, h0] = [await cpuOf(neighbour), await cpuOf(hog)];
    const loop = await call("POST", `/v1/sandboxes/${neighbour}/processes`, {
      cmd: ["sh", "-c", "while :; do :; done"],
    });
    expect(loop.status).toBe(201);
    const n1 = await waitFor(
      "the neighbour to use 1 s of CPU beside the hog",
      () => cpuOf(neighbour),
      (c) => c > n0 + 1,
      {
        timeoutMs: 120_000,
      },
    );
    const h1 = await cpuOf(hog);
    console.log(`neighbour CPU ${(n1 - n0).toFixed(2)} s while the hog used ${(h1 - h0).toFixed(2)} s`);
    expect(n1 - n0).toBeGreaterThanOrEqual((h1 - h0) / 2);
    await call("DELETE", `/v1/sandboxes/${hog}`);
    await call("DELETE", `/v1/sandboxes/${neighbour}`);
  }, 300_000);

  it("a log flood is bounded on the sandbox's disk, and the logs endpoint answers with a bounded body", async () => {
    const id = await create();
    const p = await call("POST", `/v1/sandboxes/${id}/processes`, { cmd: ["sh", "-c", "yes flood"] });
    await new Promise((r) => setTimeout(r, 4000)); // the behaviour under test: 4 s of flooding
    const logs = execFileSync(
      "sh",
      [
        "-c",
        `find ${server.dataDir}/runtime/sandboxes/${id} -path '*procs/${p.body.pid}/log*' -printf '%s\\n'`,
      ],
      { encoding: "utf8" },
    )
      .split("\n")
      .filter(Boolean)
      .map(Number);
    const total = logs.reduce((a, b) => a + b, 0);
    console.log(`log flood: ${logs.length} log files, ${(total / MiB).toFixed(1)} MiB kept after 4 s of yes`);
    expect(total).toBeLessThanOrEqual(8 * MiB + 64 * 1024);
    const r = await call("GET", `/v1/sandboxes/${id}/processes/${p.body.pid}/logs`);
    expect(r.status).toBe(200);
    expect(String(r.body.stdout).length).toBeLessThanOrEqual(1024 * 1024);
    await call("DELETE", `/v1/sandboxes/${id}`);
  });

  it("huge exec output is cut at the limit and marked; the server's memory stays bounded", async () => {
    const id = await create();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 3; i++) {
      const r = await sh(id, "head -c 300000000 /dev/zero | tr '\\0' a", 120);
      expect(r.truncated).toBe(true);
      expect(r.stdout.length).toBeLessThanOrEqual(1024 * 1024);
    }
    const grew = process.memoryUsage().rss - rss0;
    console.log(`3 x 300 MB of exec output: server RSS grew ${(grew / MiB).toFixed(1)} MiB`);
    expect(grew).toBeLessThan(300 * MiB);
    await call("DELETE", `/v1/sandboxes/${id}`);
  });

  // Every sandbox runs as uid 1000 and the kernel counts inotify instances and watches per uid;
  // the server raises those ceilings above what the host's memory could hold, so a sandbox is
  // bounded by its own limits (open files, memory cgroup) and cannot take inotify from others.
  it("one sandbox holding every inotify instance it can leaves its neighbours' and the host's inotify working", async () => {
    const hog = await create();
    const neighbour = await create();
    const inotify = `python3 -c 'import ctypes,os;l=ctypes.CDLL(None,use_errno=True);r=l.inotify_init();print("ok" if r>=0 else os.strerror(ctypes.get_errno()))'`;
    try {
      expect((await sh(neighbour, inotify)).stdout).toBe("ok\n");
      // Instances with a watch each, until the sandbox's own limit stops it; then it holds them.
      const p = await call("POST", `/v1/sandboxes/${hog}/processes`, {
        cmd: [
          "python3",
          "-c",
          "import ctypes,os,time\nl=ctypes.CDLL(None,use_errno=True)\nn=0\nwhile n<200000:\n  r=l.inotify_init()\n  if r<0: break\n  l.inotify_add_watch(r,b'/workspace',0xfff)\n  n+=1\nprint('held',n,os.strerror(ctypes.get_errno()),flush=True)\ntime.sleep(60)",
        ],
      });
      const held = await waitFor(
        "the inotify hog to say how many it holds",
        async () =>
          String((await call("GET", `/v1/sandboxes/${hog}/processes/${p.body.pid}/logs`)).body.stdout),
        (out) => out.includes("held"),
        { timeoutMs: 90_000 },
      );
      const count = Number(held.split(" ")[1]);
      // Far past the usual per-uid ceiling of 128: the sandbox's own open-files limit stopped it.
      expect(count, held).toBeGreaterThan(1000);
      expect(held).toMatch(/Too many open files/);
      const inside = (await sh(neighbour, inotify)).stdout;
      const watch = await fetch(`${server.url}/v1/sandboxes/${neighbour}/files/watch?path=/workspace`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
        signal: AbortSignal.timeout(300),
      })
        .then(async (r) => `${r.status} ${(await r.text()).slice(0, 120)}`)
        .catch(() => "200 (streaming)");
      // The hog's own watch API works (another process, its own open-files limit) or is refused
      // with a stable code; never a server error.
      const own = await fetch(`${server.url}/v1/sandboxes/${hog}/files/watch?path=/workspace`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
        signal: AbortSignal.timeout(500),
      })
        .then(async (r) => ({ status: r.status, body: (await r.text()).slice(0, 200) }))
        .catch(() => ({ status: 200, body: "(streaming)" }));
      const host = execFileSync(
        "setpriv",
        ["--reuid", "1000", "--regid", "1000", "--clear-groups", "sh", "-c", inotify],
        { encoding: "utf8" },
      );
      console.log(
        `inotify: one sandbox held ${count} instances; neighbour's inotify_init: ${inside.trim()}; its watch API: ${watch}; the hog's own watch API: ${own.status}; host uid 1000: ${host.trim()}`,
      );
      expect(inside).toBe("ok\n");
      expect(watch).toMatch(/^200/);
      expect(host).toBe("ok\n");
      if (own.status !== 200) {
        expect(own.status, own.body).toBe(429);
        expect(JSON.parse(own.body).error.code).toBe("limit_exceeded");
      }
    } finally {
      await call("DELETE", `/v1/sandboxes/${hog}`);
      await call("DELETE", `/v1/sandboxes/${neighbour}`);
    }
  }, 150_000);

  it("lists a directory of 20,000 files through the file API", async () => {
    const id = await create({ resources: { diskMiB: 256 } });
    await sh(id, "mkdir /workspace/many && cd /workspace/many && seq 20000 | xargs touch", 120);
    const t0 = performance.now();
    const r = await call("GET", `/v1/sandboxes/${id}/files?path=/workspace/many`);
    console.log(`listing 20,000 files took ${(performance.now() - t0).toFixed(0)} ms`);
    expect(r.status).toBe(200);
    expect(r.body.entries).toHaveLength(20000);
    await call("DELETE", `/v1/sandboxes/${id}`);
  });
});
