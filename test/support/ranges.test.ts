// The test range allocator: what it hands out is free on the host and held against other test processes.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { LinuxRuntime } from "@berth/runtime-linux";
import { describe, expect, it } from "vitest";
import { holdRange, overlaps, type RangeHold, rangesInUse, tryHold } from "./ranges.js";

const holdFile = (cidr: string) => `/tmp/berth-test-ranges/${cidr.replace("/", "_")}`;

describe("test network ranges", () => {
  it("hands out ranges that overlap nothing on the host, the server default, or each other", () => {
    const holds: RangeHold[] = [];
    try {
      for (let i = 0; i < 20; i++) holds.push(holdRange("sandboxes"));
      for (let i = 0; i < 5; i++) holds.push(holdRange("dockerPool"), holdRange("outside"));
      const used = rangesInUse();
      for (const [i, h] of holds.entries()) {
        expect(used.filter((u) => overlaps(u, h.cidr))).toEqual([]);
        expect(holds.filter((o, j) => j !== i && overlaps(o.cidr, h.cidr)).map((o) => o.cidr)).toEqual([]);
        expect(readFileSync(holdFile(h.cidr), "utf8")).toBe(String(process.pid));
      }
    } finally {
      for (const h of holds) h.release();
    }
    expect(holds.filter((h) => existsSync(holdFile(h.cidr)))).toEqual([]);
  });

  it("sees the range of a Berth runtime that has no sandbox yet (its nftables table, its registry entry)", async () => {
    const h = holdRange("sandboxes");
    const dataDir = mkdtempSync("/tmp/berth-ranges-");
    const rt = new LinuxRuntime({
      dataDir,
      ociRuntime: "auto",
      diskPoolSize: 0,
      network: { enabled: true, cidr: h.cidr, dnsUpstream: "127.0.0.1" },
    });
    try {
      await rt.start();
      expect(rangesInUse()).toContain(h.cidr);
    } finally {
      await rt.purgeHostState();
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
      h.release();
    }
  });

  it("takes over the hold of a process that died, and never one of a live process", () => {
    const h = holdRange("outside");
    h.release();
    // A pid that certainly ended: a child that already exited.
    writeFileSync(holdFile(h.cidr), String(spawnSync("true").pid));
    const again = tryHold(h.cidr);
    expect(again?.cidr).toBe(h.cidr);
    expect(readFileSync(holdFile(h.cidr), "utf8")).toBe(String(process.pid));
    again?.release();
    // A live holder (this process's parent) keeps it, and a release by another process leaves it.
    writeFileSync(holdFile(h.cidr), String(process.ppid));
    try {
      expect(tryHold(h.cidr)).toBeNull();
      h.release();
      expect(readFileSync(holdFile(h.cidr), "utf8")).toBe(String(process.ppid));
    } finally {
      rmSync(holdFile(h.cidr), { force: true });
    }
  });
});
