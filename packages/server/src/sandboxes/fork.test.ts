import type { SandboxRecord } from "@berth/core";
import { describe, expect, it } from "vitest";
import { type ForkDeps, forkAll } from "./fork.js";

/** A source sandbox record with the fields a fork reads. */
const source = {
  id: "sbsource0000000000",
  state: "running",
  labels: { team: "a" },
  network: { egress: "none", allow: [], deny: [] },
  timeoutSeconds: null,
  idle: null,
} as unknown as SandboxRecord;

/** Services that make copies until `failAt` (1-based) and record what was made and removed. */
function services(failAt: number) {
  const made: string[] = [];
  const removed: string[] = [];
  let n = 0;
  const deps = {
    runtime: { forksSandboxes: true },
    snapshots: {},
    sandboxes: {
      live: async () => source,
      create: async () => {
        n += 1;
        if (n === failAt) throw new Error(`copy ${n} failed`);
        const id = `sbcopy${n}`;
        made.push(id);
        return { ...source, id };
      },
      remove: async (_t: string, id: string) => {
        removed.push(id);
      },
    },
  } as unknown as ForkDeps;
  return { deps, made, removed };
}

describe("forkAll", () => {
  it("answers every copy when all are made", async () => {
    const s = services(0);
    const copies = await forkAll(s.deps, "t", source.id, { count: 3 });
    expect(copies.map((c) => c.id).sort()).toEqual(["sbcopy1", "sbcopy2", "sbcopy3"]);
    expect(s.removed).toEqual([]);
  });

  it("deletes the copies it made when one fails, and throws that failure", async () => {
    const s = services(2);
    await expect(forkAll(s.deps, "t", source.id, { count: 3 })).rejects.toThrow("copy 2 failed");
    expect(s.made).toHaveLength(2);
    expect(s.removed.sort()).toEqual([...s.made].sort());
  });
});
