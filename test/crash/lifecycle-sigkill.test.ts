// A server SIGKILLed in the middle of pause, resume, hibernate, wake, snapshot or delete must
// come back consistent: each operation either done or rolled back, the store's state matching
// what is on the machine, the sandbox's files intact, and no half-written snapshot.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { api } from "../support/server.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

let srv: ServerProcess;
/** What each kill left, printed at the end: both outcomes should show up across the delays. */
const outcomes: string[] = [];
const call = (method: string, path: string, body?: unknown) => api(srv, srv.adminKey, method, path, body);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the OCI runtime says of a sandbox: running, paused, stopped, or absent. */
function runcStatus(id: string): string {
  try {
    const out = execFileSync("runc", ["--root", `${srv.dataDir}/runtime/runc`, "state", id], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return (JSON.parse(out) as { status: string }).status;
  } catch {
    return "absent";
  }
}
const mountsOf = (id: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(id));

/** A new sandbox holding /workspace/mark, brought into `state`. */
async function sandboxIn(state: "running" | "paused" | "hibernated"): Promise<string> {
  const r = await call("POST", "/v1/sandboxes", {});
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const id = r.body.id as string;
  await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["sh", "-c", "echo kept > /workspace/mark"] });
  if (state === "paused") expect((await call("POST", `/v1/sandboxes/${id}/pause`)).body.state).toBe("paused");
  if (state === "hibernated")
    expect((await call("POST", `/v1/sandboxes/${id}/hibernate`)).body.state).toBe("hibernated");
  return id;
}

/** The store and the machine agree, and the sandbox's files survived whatever state it is in. */
async function expectConsistent(id: string, allowed: string[], what: string) {
  const state = (await call("GET", `/v1/sandboxes/${id}`)).body.state as string;
  outcomes.push(`${what} -> ${state}`);
  const runc = runcStatus(id);
  const where = `${what}: store says ${state}, runc says ${runc}`;
  expect(allowed, where).toContain(state);
  if (state === "running") expect(runc, where).toBe("running");
  if (state === "paused") expect(runc, where).toBe("paused");
  if (state === "hibernated" || state === "deleted") expect(runc, where).toBe("absent");
  if (state === "deleted") {
    expect(mountsOf(id), where).toEqual([]);
    return;
  }
  // Whatever it is in, it can be used again and its files are there (a paused or hibernated
  // sandbox is resumed or woken by the exec itself).
  const r = await call("POST", `/v1/sandboxes/${id}/exec`, { cmd: ["cat", "/workspace/mark"] });
  expect(r.body.stdout, `${where}: ${JSON.stringify(r.body)}`).toBe("kept\n");
}

/** Sends the requests at once, SIGKILLs the server `delayMs` later, and starts it again. */
async function killDuring(
  requests: Array<{ method: string; path: string; body?: unknown }>,
  delayMs: number,
) {
  const sent = requests.map((r) => call(r.method, r.path, r.body).catch(() => undefined));
  await sleep(delayMs); // the behaviour under test: the kill lands at this point of the requests
  await srv.kill("SIGKILL");
  await Promise.all(sent);
  await srv.start();
}

beforeAll(async () => {
  execFileSync("npx", ["tsc", "-b", "packages/cli"], { cwd: `${import.meta.dirname}/../..` });
  srv = await startServerProcess();
});

afterAll(async () => {
  console.log(outcomes.join("\n"));
  await srv?.purge();
});

// Kill moments: at once, mid-way and late for operations that take 1-50 ms here (every restart
// costs seconds, so CI takes three; `npm run soak` also kills early, at 3 ms).
const DELAYS = process.env.SOAK_SECONDS ? [0, 3, 12, 30] : [0, 12, 30];

const CASES: Array<{ op: string; from: "running" | "paused" | "hibernated"; after: string[] }> = [
  { op: "pause", from: "running", after: ["running", "paused"] },
  { op: "resume", from: "paused", after: ["paused", "running"] },
  { op: "hibernate", from: "running", after: ["running", "hibernated"] },
  { op: "wake", from: "hibernated", after: ["hibernated", "running"] },
];

// Each kill cuts all five operations at once, each on a sandbox of its own (a restart costs
// seconds; one per delay instead of one per operation and delay): recovery must sort out
// several interrupted operations in one start, each to its own consistent end.
it("finishes or rolls back pause, resume, hibernate, wake and delete cut short by SIGKILL, leaving nothing of a deleted sandbox", async () => {
  for (const delay of DELAYS) {
    const ids = await Promise.all(CASES.map((c) => sandboxIn(c.from)));
    const deleting = await sandboxIn("running");
    await killDuring(
      [
        ...CASES.map((c, i) => ({ method: "POST", path: `/v1/sandboxes/${ids[i]}/${c.op}` })),
        { method: "DELETE", path: `/v1/sandboxes/${deleting}` },
      ],
      delay,
    );
    for (const [i, c] of CASES.entries()) {
      await expectConsistent(ids[i] as string, c.after, `${c.op} killed after ${delay} ms`);
      await call("DELETE", `/v1/sandboxes/${ids[i]}`);
    }
    await expectConsistent(deleting, ["running", "deleted"], `delete killed after ${delay} ms`);
    await call("DELETE", `/v1/sandboxes/${deleting}`);
    await expectConsistent(deleting, ["deleted"], "delete after the restart");
  }
}, 240_000);

it("keeps a snapshot whole or not at all when the server dies while taking it", async () => {
  for (const delay of [...DELAYS, 60, 150]) {
    const id = await sandboxIn("running");
    // Some megabytes, so the copy takes long enough to be cut.
    await call("POST", `/v1/sandboxes/${id}/exec`, {
      cmd: ["sh", "-c", "head -c 20000000 /dev/urandom > /workspace/big"],
    });
    await killDuring([{ method: "POST", path: `/v1/sandboxes/${id}/snapshots`, body: {} }], delay);
    await expectConsistent(id, ["running"], `snapshot killed after ${delay} ms`);
    const snaps = (await call("GET", "/v1/snapshots")).body.items as Array<{ id: string; sandboxId: string }>;
    const mine = snaps.filter((s) => s.sandboxId === id);
    expect(mine.length).toBeLessThanOrEqual(1);
    outcomes.push(`snapshot killed after ${delay} ms -> ${mine.length ? "snapshot kept" : "no snapshot"}`);
    // On disk: exactly the archives the store lists, no partial ones.
    const files = readdirSync(`${srv.dataDir}/snapshots`, { recursive: true }).map(String);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const s of snaps) expect(files.some((f) => f.endsWith(`${s.id}.tar.zst`))).toBe(true);
    if (mine[0]) {
      const from = await call("POST", "/v1/sandboxes", { fromSnapshot: mine[0].id });
      expect(from.status, JSON.stringify(from.body)).toBe(201);
      const r = await call("POST", `/v1/sandboxes/${from.body.id}/exec`, { cmd: ["cat", "/workspace/mark"] });
      expect(r.body.stdout).toBe("kept\n");
      await call("DELETE", `/v1/sandboxes/${from.body.id}`);
      await call("DELETE", `/v1/snapshots/${mine[0].id}`);
    }
    await call("DELETE", `/v1/sandboxes/${id}`);
  }
}, 240_000);
