import { describe, expect, it } from "vitest";
import { hourlyUsd, splitRunningTime } from "./compute.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
/** An ISO time `s` seconds after T0. */
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const run = (from: number, to: number | null) => ({
  startedAt: at(from),
  endedAt: to === null ? null : at(to),
});
const session = (id: string, from: number, to: number | null) => ({
  id,
  createdAt: at(from),
  endedAt: to === null ? null : at(to),
});

describe("splitRunningTime", () => {
  it("counts only running stretches: the gap of a hibernate is billed to nobody", () => {
    // Ran 0-100, hibernated 100-1000, ran 1000-1050; one session live all along.
    const s = splitRunningTime([run(0, 100), run(1000, 1050)], [session("a", 0, 1050)], T0 + 5_000_000);
    expect(s.runningSeconds).toBe(150);
    expect(s.sessions.get("a")).toBe(150);
    expect(s.unsharedSeconds).toBe(0);
  });

  it("splits evenly between the sessions live at each moment, and the parts add up to the whole", () => {
    // a: 10-70, b: 40-100, the sandbox runs 0-120 (0-10 and 100-120 no session is live).
    const s = splitRunningTime([run(0, 120)], [session("a", 10, 70), session("b", 40, 100)], T0);
    expect(s.runningSeconds).toBe(120);
    expect(s.sessions.get("a")).toBeCloseTo(30 + 30 / 2, 9);
    expect(s.sessions.get("b")).toBeCloseTo(30 / 2 + 30, 9);
    expect(s.unsharedSeconds).toBeCloseTo(30, 9);
    const parts = [...s.sessions.values()].reduce((x, y) => x + y, 0) + s.unsharedSeconds;
    expect(parts).toBeCloseTo(s.runningSeconds, 9);
  });

  it("an open stretch and a live session run until now; a session outside every stretch gets nothing", () => {
    const s = splitRunningTime(
      [run(0, 10), run(50, null)],
      [session("live", 0, null), session("between", 20, 40)],
      T0 + 60_000,
    );
    expect(s.runningSeconds).toBe(20);
    expect(s.sessions.get("live")).toBe(20);
    expect(s.sessions.get("between")).toBe(0);
  });

  it("three sessions in one stretch share it by thirds", () => {
    const s = splitRunningTime(
      [run(0, 90)],
      ["x", "y", "z"].map((id) => session(id, 0, 90)),
      T0,
    );
    for (const id of ["x", "y", "z"]) expect(s.sessions.get(id)).toBeCloseTo(30, 9);
    expect(s.unsharedSeconds).toBe(0);
  });

  it("ignores empty and backwards stretches", () => {
    expect(splitRunningTime([run(5, 5), run(9, 3)], [session("a", 0, 10)], T0).runningSeconds).toBe(0);
  });
});

describe("hourlyUsd", () => {
  it("prices reserved CPUs and memory", () => {
    expect(hourlyUsd({ cpus: 2, memoryMiB: 512 }, { cpuHourUsd: 0.05, memoryGiBHourUsd: 0.01 })).toBeCloseTo(
      0.105,
      12,
    );
  });
});
