import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import LongFirstSequencer from "./test/support/sequencer.js";

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

// Tests import workspace packages from source so they run without a build.
export default defineConfig({
  resolve: {
    alias: {
      // Before "@berth/core", which would otherwise take the subpath as a prefix.
      "@berth/core/contract": fileURLToPath(
        new URL("./packages/core/src/contract/index.ts", import.meta.url),
      ),
      "@berth/core": pkg("core"),
      "@berth/supervisor": pkg("supervisor"),
      "@berth/store": pkg("store"),
      "@berth/linux-host": pkg("linux-host"),
      "@berth/runtime-linux": pkg("runtime-linux"),
      "@berth/runtime-docker": pkg("runtime-docker"),
      "@berth/runtime-kubernetes": pkg("runtime-kubernetes"),
      "@berth/server": pkg("server"),
      "@berth/sdk": pkg("sdk"),
      "@berth/cli": pkg("cli"),
    },
  },
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Most files wait on sandboxes, agents and servers more than they compute: three at once
    // keep the 2-core machines busy without starving any (measured: the suite at 2 took 14.6 min).
    maxWorkers: 3,
    globalSetup: ["test/support/global-setup.ts"],
    // The long files first, also on a fresh clone (see the sequencer).
    sequence: { sequencer: LongFirstSequencer },
    // `npm run test:soak` asks for a JSON report beside the usual output; unset, nothing changes.
    ...(process.env.BERTH_TEST_JSON
      ? { reporters: ["default", "json"], outputFile: { json: process.env.BERTH_TEST_JSON } }
      : {}),
  },
});
