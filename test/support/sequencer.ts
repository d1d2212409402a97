// Test files in the order that ends the suite soonest: the long ones first.
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Seconds each long file took in CI (median of three fresh-clone runs, 2026-12; lifecycle-sigkill
 * after it went to 8 restarts). Only the order matters. Vitest orders by its own cache of the last
 * run's durations, which a fresh clone (CI) lacks; it then runs big files first, and a long file
 * that is small on disk started ~8 min into the suite and ran alone at the end. Refresh from
 * `BERTH_TEST_JSON=report.json npm test` when a file grows long.
 */
const LONG_FILES: Record<string, number> = {
  "test/crash/lifecycle-sigkill.test.ts": 90,
  "test/abuse/abuse.test.ts": 74,
  "test/e2e/sessions-money.test.ts": 70,
  "test/e2e/first-start.test.ts": 64,
  "test/e2e/cli-parity.test.ts": 60,
  "test/e2e/sessions.test.ts": 56,
  "test/e2e/managed-agents.test.ts": 48,
  "test/e2e/sessions-turns.test.ts": 41,
  "test/e2e/cli.test.ts": 39,
  "test/kubernetes/server-on-kubernetes.test.ts": 37,
  "test/crash/crash-under-load.test.ts": 36,
  "test/e2e/network.test.ts": 35,
  "test/replicas/sessions-replicas.test.ts": 33,
  "test/e2e/sessions-seams.test.ts": 32,
  "test/docker/network.test.ts": 30,
  "test/e2e/idle.test.ts": 30,
  "test/web/dashboard.test.ts": 27,
  "test/conformance/docker.test.ts": 26,
  "test/e2e/gateway.test.ts": 26,
  "test/e2e/sessions-cli.test.ts": 25,
  "test/replicas/replicas.test.ts": 24,
  "test/security/escape.test.ts": 24,
  "test/e2e/sessions-control.test.ts": 23,
  "test/e2e/templates.test.ts": 23,
  "test/e2e/sessions-outputs.test.ts": 22,
};

/** Vitest's order (cached durations, else size), with the files known to be long moved to the front, longest first. */
export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files);
    const root = this.ctx.config.root;
    const seconds = (f: TestSpecification) => LONG_FILES[relative(root, f.moduleId)] ?? 0;
    // Stable: files not in the table keep vitest's order behind the long ones.
    return [...ordered].sort((a, b) => seconds(b) - seconds(a));
  }
}
