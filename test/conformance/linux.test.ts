// The local Linux driver (runc, overlay on loop disks, cgroups, netns) against the conformance suite.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { LinuxRuntime } from "@berth/runtime-linux";
import { holdRange } from "../support/ranges.js";
import { describeRuntimeConformance } from "./runtime-conformance.js";

describeRuntimeConformance("linux (runc)", async () => {
  const dataDir = mkdtempSync("/tmp/berth-cf-");
  const range = holdRange("sandboxes");
  const cidr = range.cidr;
  const runtime = new LinuxRuntime({
    dataDir,
    ociRuntime: "auto",
    diskPoolSize: 1,
    defaultDiskMiB: 64,
    network: { enabled: true, cidr, dnsUpstream: "127.0.0.1" },
  });
  await runtime.start();
  return {
    runtime,
    leftovers: (id) => [
      ...readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .filter((l) => l.includes(id)),
      ...execFileSync(
        "sh",
        [
          "-c",
          `find /sys/fs/cgroup -maxdepth 5 -type d -name '${id}' 2>/dev/null; ps -eo args | grep -F '${id}' | grep -v grep; true`,
        ],
        {
          encoding: "utf8",
        },
      )
        .split("\n")
        .filter(Boolean),
      ...execFileSync("sh", ["-c", `losetup -a | grep -F '/${id}/' ; true`], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean),
    ],
    async close() {
      await runtime.purgeHostState();
      await runtime.close();
      execFileSync("sh", [
        "-c",
        `grep -q ' ${dataDir}/' /proc/self/mountinfo && umount -R -l ${dataDir}/* 2>/dev/null; true`,
      ]);
      rmSync(dataDir, { recursive: true, force: true });
      range.release();
    },
  };
});
