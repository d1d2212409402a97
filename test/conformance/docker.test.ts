// The Docker driver (a Docker Engine on this host; Debian's dockerd started here if none runs)
// against the conformance suite. Its named gaps are declared, and listed in docs/drivers.md.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { DockerRuntime } from "@berth/runtime-docker";
import { describe, it } from "vitest";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";
import { describeRuntimeConformance } from "./runtime-conformance.js";

const docker = await startTestDocker();

if ("reason" in docker) {
  console.log(`docker conformance skipped: ${docker.reason}`);
  describe("runtime conformance: docker", () => {
    it.skip(`needs a Docker Engine: ${docker.reason}`, () => {});
  });
} else {
  const engine: TestDocker = docker;
  describeRuntimeConformance("docker", async () => {
    const dataDir = mkdtempSync("/tmp/berth-cfd-");
    const runtime = new DockerRuntime({ dataDir, socketPath: engine.socketPath });
    await runtime.start();
    return {
      runtime,
      // The disk limit needs a storage driver with quotas (the test dockerd uses btrfs when mkfs.btrfs is installed).
      gaps: runtime.enforcesDiskLimit ? [] : ["disk"],
      leftovers: (id) => [
        ...dockerJson<{ Names: string[] }[]>(
          engine.socketPath,
          `/containers/json?all=true&filters=${label(id)}`,
        ).map((c) => `container ${c.Names.join(",")}`),
        ...execFileSync(
          "sh",
          [
            "-c",
            `ps -eo args | grep -F '${id}' | grep -v grep; ls -d ${dataDir}/runtime-docker/sandboxes/${id} 2>/dev/null; true`,
          ],
          {
            encoding: "utf8",
          },
        )
          .split("\n")
          .filter(Boolean),
      ],
      async close() {
        await runtime.purgeHostState();
        await runtime.close();
        rmSync(dataDir, { recursive: true, force: true });
        await engine.stop();
      },
    };
  });
}

function label(id: string): string {
  return encodeURIComponent(JSON.stringify({ label: [`berth.sandbox=${id}`] }));
}

/** A synchronous engine call (leftovers is synchronous): curl over the socket. */
function dockerJson<T>(socketPath: string, path: string): T {
  return JSON.parse(
    execFileSync("curl", ["-sf", "--unix-socket", socketPath, `http://d${path}`], { encoding: "utf8" }),
  ) as T;
}
