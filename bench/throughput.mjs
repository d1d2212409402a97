// API throughput on one server: the create/exec/write/read/delete load (bench/load.mjs) and
// how many execs per second the API carries with many clients at once.
import { caller, startBerth } from "./berth.mjs";
import { printLoad, runLoad } from "./load.mjs";

/** `clients` concurrent callers running `true` in `sandboxes` sandboxes for `seconds`. */
async function execRate(server, { sandboxes = 4, clients = 16, seconds = 5 } = {}) {
  const call = caller(server);
  const ids = [];
  for (let i = 0; i < sandboxes; i++) ids.push((await call("POST", "/v1/sandboxes", {})).id);
  let done = 0;
  let failed = 0;
  const deadline = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (Date.now() < deadline) {
        const r = await call("POST", `/v1/sandboxes/${ids[c % ids.length]}/exec`, { cmd: ["true"] }).catch(
          () => null,
        );
        if (r?.exitCode === 0) done++;
        else failed++;
      }
    }),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  for (const id of ids) await call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
  return { execPerSecond: rate, clients, sandboxes, failed };
}

export async function benchThroughput() {
  const server = await startBerth({ BERTH_LOG_LEVEL: "warn", BERTH_DISK_POOL_SIZE: "8" });
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const exec = await execRate(server);
    const load = await runLoad({ url: server.url, key: server.key, clients: 8, seconds: 10 });
    return { name: "throughput", execRate: exec, load };
  } finally {
    await server.stop();
  }
}

export function printThroughput(t) {
  console.log(
    `\nexec throughput: ${t.execRate.execPerSecond.toFixed(0)} exec/s through the API (${t.execRate.clients} clients, ` +
      `${t.execRate.sandboxes} sandboxes, ${t.execRate.failed} failed; goal >= 200 exec/s)`,
  );
  console.log("load (bench/load.mjs): ");
  printLoad(t.load);
}
