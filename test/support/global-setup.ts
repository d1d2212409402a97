// Runs once around the whole suite: builds the supervisor binary the runtime tests need, purges
// what interrupted runs left on this host, and makes this run's dir (see test-runs.ts).
import { execFileSync } from "node:child_process";
import { beginRun, purgeDeadRuns, purgeRun } from "./test-runs.js";

export default async function setup(): Promise<() => Promise<void>> {
  execFileSync("make", ["-s", "-C", "packages/supervisor"], { stdio: "inherit" });
  const leftovers = await purgeDeadRuns();
  if (leftovers.length > 0) console.log(`purged ${leftovers.length} data dirs of interrupted test runs`);
  const run = beginRun();
  return async () => {
    // Whatever a test file did not remove (it failed half-way, or it leaks: worth a look).
    const left = await purgeRun(run);
    if (left.length > 0) console.log(`purged data dirs the tests left: ${left.join(", ")}`);
  };
}
